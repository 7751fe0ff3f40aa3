package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/vpipe/vpipe/pipeline/config"
)

// clientTLS is the TLS configuration of a client for the tls block of the
// section at (config.ClientTLS; at names it in the log, errors name the
// block's keys for the caller to prefix): nil, Go's defaults with the system roots,
// when the block sets nothing; else the CA file's certificates instead of
// the system roots, or no verification at all when insecure_skip_verify
// asks for it, which it logs as a warning at every start (log nil: the
// client warns itself). The vCenter clients take the block's fields
// themselves (govmomi's soap.Client); they call it too, for the same
// checks.
func clientTLS(at string, c config.ClientTLS, log *slog.Logger) (*tls.Config, error) {
	if c.InsecureSkipVerify && log != nil {
		log.Warn("TLS certificate verification is off (insecure_skip_verify)", "config", at)
	}
	if c.CAFile == "" && !c.InsecureSkipVerify {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
