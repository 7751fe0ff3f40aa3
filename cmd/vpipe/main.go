// Command vpipe is the event pipeline for VMware SDDC security operations:
// syslog and HTTP ingest, VMware format parsing, Kafka, and consumer
// stages. `vpipe help` lists the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `vpipe — event pipeline for VMware SDDC security operations

Usage:
  vpipe run [-c FILE] [--data-dir DIR] [--stages LIST]   run the pipeline
  vpipe validate -c FILE                                 check a configuration
  vpipe tap [-c FILE] [--brokers LIST] [--from-beginning] TOPIC
                                                         print a topic's events as NDJSON
  vpipe tenants -c FILE                                  print each tenant with its computed log labels
  vpipe tagsync --dry-run -c FILE                        print the vSphere-tag → NSX-tag sync plan
  vpipe replay --from TOPIC [--filter EXPR] [--dry-run]  re-inject DLQ or parked records
  vpipe top [--url URL] [--interval D]                   show each stage's rate, lag and errors live
  vpipe demo [--keep] [--data-dir DIR] [--timeout D]    run every workflow once against simulators
  vpipe version                                          print the version

Without -c, 'vpipe run' starts everything on its embedded default: a Kafka-
protocol broker on 127.0.0.1:9092 keeping its data under ./vpipe-data,
syslog on UDP and TCP 127.0.0.1:5514, and HTTP ingest, /metrics, /healthz and
/readyz on 127.0.0.1:8080. Every key of the configuration file is documented
in deploy/vpipe.example.yaml.

Run 'vpipe COMMAND --help' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks a command-line mistake: exit status 2.
var errUsage = errors.New("usage")

// runMain dispatches a command and returns the process exit status: 0 ok,
// 1 failure, 2 usage error.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stderr)
	case "validate":
		err = cmdValidate(args[1:], stdout, stderr)
	case "tap":
		err = cmdTap(ctx, args[1:], stdout, stderr)
	case "tenants":
		err = cmdTenants(ctx, args[1:], stdout, stderr)
	case "tagsync":
		err = cmdTagSync(ctx, args[1:], stdout, stderr)
	case "replay":
		err = cmdReplay(ctx, args[1:], stdout, stderr)
	case "top":
		err = cmdTop(ctx, args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		cmdVersion(stdout)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "vpipe: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "vpipe %s: %v\n", args[0], err)
		return 1
	}
}

// newFlags returns a flag set whose -help prints synopsis and the flags.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, mapping flag errors to errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
