// Package simcmd holds what the simulator commands (cmd/nsxsim, cmd/vcdsim,
// cmd/vcosim, cmd/znunysim) share: exit codes, flag parsing and serving
// HTTP until SIGINT or SIGTERM, so each main.go holds only its own flags
// and simulator.
package simcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ErrUsage reports a command line that could not be parsed; the flag
// package has already said why. Main exits 2 on it.
var ErrUsage = errors.New("usage")

// Main runs run with the process's arguments and a context that ends on
// SIGINT or SIGTERM, and exits: 0 when run returns nil or flag.ErrHelp,
// 2 on ErrUsage, else 1 after printing "name: error" to stderr.
func Main(name string, run func(ctx context.Context, args []string, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(ExitCode(name, err, os.Stderr))
}

// ExitCode is the exit status Main uses for err, printing err to stderr
// when it is a failure rather than a usage error or a request for help.
func ExitCode(name string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 1
}

// Parse parses args into fs. It returns flag.ErrHelp for -h, and ErrUsage
// for a bad flag or a positional argument (none of the simulators takes
// one), after printing the usage.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return ErrUsage
	}
	return nil
}

// Serve serves srv on ln until ctx ends, then shuts it down, giving
// requests in flight five seconds. It returns nil after a shutdown and the
// server's error if serving failed.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	if srv.ReadHeaderTimeout == 0 {
		srv.ReadHeaderTimeout = 10 * time.Second
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
