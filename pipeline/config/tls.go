package config

// ClientTLS is how vpipe verifies a server it connects to (vCenter, NSX,
// VCO, Znuny, VCD): the `tls` block of each of those sections, one
// spelling everywhere.
type ClientTLS struct {
	// CAFile holds the PEM CA certificates that signed the server's
	// certificate (a vCenter's VMCA root, a private CA); they are trusted
	// instead of the system's roots. Empty: the system's roots.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify accepts any server certificate: labs and
	// simulators only; logged at every start.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// check reports a ca_file that cannot be read and a ca_file set together
// with insecure_skip_verify (one of them is a mistake), under path at (the
// tls block).
func (t ClientTLS) check(p *Problems, at string) {
	checkFile(p, at+".ca_file", t.CAFile)
	if t.InsecureSkipVerify && t.CAFile != "" {
		p.add(at+".insecure_skip_verify", "set together with ca_file: verify with the CA, or do not verify")
	}
}
