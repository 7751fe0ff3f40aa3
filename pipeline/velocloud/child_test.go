package velocloud_test

const childEnv = "VPIPE_VCO_TEST_CHILD"

func runChild() int { return 0 }
