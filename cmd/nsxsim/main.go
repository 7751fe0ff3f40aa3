// Command nsxsim serves the in-memory NSX simulator (sinks/nsx/simulator)
// for demos and manual tests: the NSX-T / NSX 4.x Manager and Policy
// endpoints that tag VMs, groups with tag-based membership, NSX-V security
// tags, session and basic auth, and VMware Cloud on AWS' CSP token
// exchange and SDDC lookup.
//
//	nsxsim -listen 127.0.0.1:8443 -tls -ca-out nsxsim-ca.pem -vms 20
//
// Point vpipe's stages.tag_sync.nsx (or jit_access.nsx) at it with
// url: https://127.0.0.1:8443, ca_file: nsxsim-ca.pem, username admin and
// the password given here.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/vpipe/vpipe/cmd/internal/simcmd"
	"github.com/vpipe/vpipe/sinks/nsx/simulator"
)

func main() { simcmd.Main("nsxsim", run) }

// inventoryVM is one VM of an -inventory file.
type inventoryVM struct {
	ExternalID   string          `json:"external_id"`
	DisplayName  string          `json:"display_name"`
	MoRef        string          `json:"moref"`
	Tags         []simulator.Tag `json:"tags"`
	SecurityTags []string        `json:"security_tags"`
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("nsxsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8443", "`address` to serve on")
	useTLS := fs.Bool("tls", true, "serve HTTPS with a self-signed certificate (see -ca-out), unless -cert and -key are given")
	certFile := fs.String("cert", "", "TLS certificate `file` (PEM)")
	keyFile := fs.String("key", "", "TLS key `file` (PEM)")
	caOut := fs.String("ca-out", "", "write the self-signed certificate to this `file`, for clients' ca_file")
	users := fs.String("users", "admin:VMware1!VMware1!", "comma-separated `user:password` pairs for basic and session auth")
	tokens := fs.String("refresh-tokens", "", "comma-separated CSP API `tokens` the VMC token exchange accepts")
	vms := fs.Int("vms", 0, "`n` demo VMs (demo-vm-001 ...) with random instance UUIDs")
	inventory := fs.String("inventory", "", "JSON `file`: an array of {external_id, display_name, moref, tags, security_tags}")
	groups := fs.String("groups", "", "JSON `file`: an array of {domain, id, group}, each group a Policy API Group body (display_name, expression) created at start")
	rate := fs.Int("rate-limit", 0, "requests per second per client before 429 (NSX's default is 100; 0: none)")
	org := fs.String("org", "org-1", "VMC org id")
	sddc := fs.String("sddc", "sddc-1", "VMC SDDC id")
	verbose := fs.Bool("v", false, "log every request")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "nsxsim [flags]: an in-memory NSX for demos and tests\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := simcmd.Parse(fs, args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts := simulator.Options{Users: map[string]string{}, RateLimit: *rate, OrgID: *org, SDDCID: *sddc, Log: log}
	for _, up := range splitList(*users) {
		u, p, ok := strings.Cut(up, ":")
		if !ok || u == "" || p == "" {
			return fmt.Errorf("-users: %q is not user:password", up)
		}
		opts.Users[u] = p
	}
	opts.RefreshTokens = splitList(*tokens)
	sim := simulator.New(opts)
	if *inventory != "" {
		b, err := os.ReadFile(*inventory)
		if err != nil {
			return err
		}
		var list []inventoryVM
		if err := json.Unmarshal(b, &list); err != nil {
			return fmt.Errorf("-inventory %s: %w", *inventory, err)
		}
		for _, v := range list {
			if v.ExternalID == "" {
				return fmt.Errorf("-inventory %s: a VM without external_id", *inventory)
			}
			sim.AddVM(simulator.VM{ExternalID: v.ExternalID, DisplayName: v.DisplayName, MoRef: v.MoRef, Tags: v.Tags, SecurityTags: v.SecurityTags})
		}
	}
	if *groups != "" {
		if err := loadGroups(sim, *groups, opts.Users); err != nil {
			return fmt.Errorf("-groups %s: %w", *groups, err)
		}
	}
	for i := 1; i <= *vms; i++ {
		sim.AddVM(simulator.VM{ExternalID: randomUUID(), DisplayName: fmt.Sprintf("demo-vm-%03d", i), MoRef: fmt.Sprintf("vm-%d", 1000+i)})
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim}
	scheme := "http"
	switch {
	case *certFile != "" || *keyFile != "":
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	case *useTLS:
		cert, certPEM, err := selfSigned(ln.Addr().(*net.TCPAddr).IP)
		if err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if *caOut != "" {
			if err := os.WriteFile(*caOut, certPEM, 0o644); err != nil {
				return err
			}
		}
	}
	if srv.TLSConfig != nil {
		scheme = "https"
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	log.Info("nsxsim serving", "url", scheme+"://"+ln.Addr().String(), "vms", len(sim.VMs()),
		"vmc_sddc", scheme+"://"+ln.Addr().String()+"/vmc/api/orgs/"+*org+"/sddcs/"+*sddc)
	return simcmd.Serve(ctx, srv, ln)
}

// policyGroup is one group of a -groups file.
type policyGroup struct {
	Domain string          `json:"domain"`
	ID     string          `json:"id"`
	Group  json.RawMessage `json:"group"`
}

// loadGroups creates the groups of a -groups file through the simulator's
// own Policy API (PUT /policy/api/v1/infra/domains/<domain>/groups/<id>,
// as an NSX administrator or a demo script would), so a file is held to
// what the API accepts.
func loadGroups(sim *simulator.Server, path string, users map[string]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var list []policyGroup
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return err
	}
	var user, password string
	for u, p := range users {
		user, password = u, p
		break
	}
	for i, g := range list {
		if g.ID == "" || len(g.Group) == 0 {
			return fmt.Errorf("group %d: id and group are required", i)
		}
		if g.Domain == "" {
			g.Domain = "default"
		}
		req := httptest.NewRequest(http.MethodPut, "/policy/api/v1/infra/domains/"+url.PathEscape(g.Domain)+"/groups/"+url.PathEscape(g.ID), bytes.NewReader(g.Group))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(user, password)
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return fmt.Errorf("group %s/%s: %d %s", g.Domain, g.ID, rec.Code, strings.TrimSpace(rec.Body.String()))
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// selfSigned makes a certificate for localhost, 127.0.0.1 and ip.
func selfSigned(ip net.IP) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "nsxsim", Organization: []string{"vpipe"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func randomUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
