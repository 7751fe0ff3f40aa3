//go:build nodemo

package main

import (
	"context"
	"errors"
	"io"
)

// cmdDemo is `vpipe demo` in a binary built with -tags nodemo: without
// vcsim and the simulators, which add about 15 MB to the binary.
func cmdDemo(context.Context, []string, io.Writer, io.Writer) error {
	return errors.New("this binary was built without the demo (-tags nodemo); 'go run ./cmd/vpipe demo' runs it")
}
