//go:build !race

package tenantsyslog_test

const raceEnabled = false
