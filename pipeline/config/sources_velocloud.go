package config

// VeloCloudSource configures one VeloCloud Orchestrator event poller.
type VeloCloudSource struct{}

// NDJSONStage configures the NDJSON-per-key file stage.
type NDJSONStage struct{}

// fillVeloCloud sets the defaults of the VCO sources and the ndjson stage.
func (c *Config) fillVeloCloud() {}

// validateVeloCloud adds the problems of the VCO sources and the ndjson
// stage.
func (c *Config) validateVeloCloud(p *Problems) {}
