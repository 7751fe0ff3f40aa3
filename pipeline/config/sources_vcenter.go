package config

// VCenterSource configures one vCenter event-history poller.
type VCenterSource struct{}

// TagSyncStage configures the vSphere-tag → NSX-tag sync stage.
type TagSyncStage struct{}

// fillVCenter sets the defaults of the vCenter sources and tag sync.
func (c *Config) fillVCenter() {}

// validateVCenter adds the problems of the vCenter sources and tag sync.
func (c *Config) validateVCenter(p *Problems) {}
