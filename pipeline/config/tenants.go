package config

// Tenants is the tenant registry: tenants with their Org VDCs, DC groups,
// edge gateways and syslog destinations, optionally filled from VCD.
type Tenants struct{}

// TenantForwardStage configures the tenant-forward stage.
type TenantForwardStage struct{}

// fillTenants sets the defaults of the tenant registry and its stage.
func (c *Config) fillTenants() {}

// validateTenants adds the problems of the tenant registry and its stage.
func (c *Config) validateTenants(p *Problems) {}
