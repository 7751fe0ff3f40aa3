// Command vpipe-loadgen sends syslog load to vpipe (or any syslog
// receiver): the lines of a file, or generated NSX DFW, NSX gateway
// firewall and vCenter event lines in the formats vpipe parses, over UDP,
// TCP or TLS, in either RFC 6587 framing, at a given rate or as fast as it
// can, and reports what it sent. The README's performance section uses it.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

const usage = `vpipe-loadgen [flags] ADDR

Sends syslog records to ADDR (host:port) and reports what it sent: with
-file, the file's non-empty lines as they are (in order, once, unless -count
or -duration asks for more: then they start again); otherwise generated
lines of the kinds -gen names, in turn: dfw (NSX 4.x distributed firewall
from ESXi, RFC 5424), gateway (NSX Edge gateway firewall), vcenter (vpxd
events, tag attach/detach among them). Generated lines carry VCD-style log
labels of -tenants tenants, come from -hosts hosts, are all different (so
their event ids differ) and are stamped with the time of sending.

It stops after -count records, after -duration, or on SIGINT/SIGTERM,
whichever comes first (generated lines without either run until
interrupted), then prints the report (-json for JSON) on stdout.
TCP and TLS senders reconnect when the receiver closes the connection;
records in a failed write count as unconfirmed.

Examples:
  vpipe-loadgen -count 1000000 -conns 4 127.0.0.1:5514          # TCP, as fast as possible
  vpipe-loadgen -transport udp -rate 20000 -duration 1m 127.0.0.1:5514
  vpipe-loadgen -file nsx.log -framing octet-counting -transport tls -tls-ca ca.pem vpipe:6514

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command: it returns the exit status, 0 ok, 1 failure, 2
// usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vpipe-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	transport := fs.String("transport", "tcp", "`udp`, tcp or tls")
	framing := fs.String("framing", framingNewline, "for tcp and tls: `non-transparent` (LF after each record) or octet-counting (\"LEN record\")")
	rate := fs.Float64("rate", 0, "records per `second`, over all connections; 0 sends as fast as possible")
	count := fs.Uint64("count", 0, "stop after `n` records (0: no limit; a -file is then sent once unless -duration is set)")
	duration := fs.Duration("duration", 0, "stop after this `long` (0: no limit)")
	conns := fs.Int("conns", 1, "parallel `connections` (UDP: sockets)")
	file := fs.String("file", "", "send the lines of this `file` instead of generated ones")
	gen := fs.String("gen", strings.Join(generatedKinds, ","), "generated `kinds`, comma-separated: "+strings.Join(generatedKinds, ", "))
	tenants := fs.Int("tenants", 8, "distinct tenants (log labels) in generated firewall lines")
	hosts := fs.Int("hosts", 16, "distinct sending hosts in generated lines")
	seed := fs.Uint64("seed", 1, "seed of the generated fields")
	report := fs.Duration("report", 0, "print progress on stderr this `often` (0: only the final report)")
	asJSON := fs.Bool("json", false, "print the final report as one JSON object")
	caFile := fs.String("tls-ca", "", "PEM `file` of the CA that signed the server certificate (default: the system roots)")
	certFile := fs.String("tls-cert", "", "client certificate PEM `file`, for mTLS")
	keyFile := fs.String("tls-key", "", "client key PEM `file`, for mTLS")
	serverName := fs.String("tls-server-name", "", "`name` to verify the server certificate against (default: ADDR's host)")
	insecure := fs.Bool("tls-insecure", false, "do not verify the server certificate")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "vpipe-loadgen: want exactly one ADDR (host:port)")
		return 2
	}
	p := plan{addr: fs.Arg(0), transport: *transport, framing: *framing, rate: *rate, count: *count, conns: *conns, report: *report}
	var problems []string
	switch p.transport {
	case "udp", "tcp", "tls":
	default:
		problems = append(problems, fmt.Sprintf("-transport %q is not one of udp, tcp, tls", p.transport))
	}
	if p.framing != framingNewline && p.framing != framingOctet {
		problems = append(problems, fmt.Sprintf("-framing %q is not one of %s, %s", p.framing, framingNewline, framingOctet))
	}
	if p.conns < 1 {
		problems = append(problems, "-conns must be at least 1")
	}
	if p.rate < 0 {
		problems = append(problems, "-rate must not be negative")
	}
	if *file == "" {
		kinds := strings.Split(*gen, ",")
		for _, k := range kinds {
			if !slices.Contains(generatedKinds, k) {
				problems = append(problems, fmt.Sprintf("-gen: unknown kind %q (known: %s)", k, strings.Join(generatedKinds, ", ")))
			}
		}
		p.src = newGenSource(kinds, *tenants, *hosts, *seed)
	}
	if len(problems) > 0 {
		fmt.Fprintln(stderr, "vpipe-loadgen: "+strings.Join(problems, "\nvpipe-loadgen: "))
		return 2
	}
	if *file != "" {
		src, err := readFile(*file)
		if err != nil {
			fmt.Fprintf(stderr, "vpipe-loadgen: %v\n", err)
			return 1
		}
		if *duration > 0 && p.count == 0 {
			p.src = endless{src}
		} else {
			p.src = src
		}
	}
	if p.transport == "tls" {
		tc, err := tlsConfig(*caFile, *certFile, *keyFile, *serverName, *insecure)
		if err != nil {
			fmt.Fprintf(stderr, "vpipe-loadgen: %v\n", err)
			return 1
		}
		p.tls = tc
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	res, err := send(ctx, p, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "vpipe-loadgen: %v\n", err)
		return 1
	}
	if *asJSON {
		b, _ := json.Marshal(res)
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		fmt.Fprint(stdout, res.summary())
	}
	return 0
}

// endless sends a file's lines round and round (with -duration).
type endless struct{ *fileSource }

func (endless) limit() uint64 { return 0 }

// tlsConfig builds the client TLS configuration from the -tls flags.
func tlsConfig(caFile, certFile, keyFile, serverName string, insecure bool) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
