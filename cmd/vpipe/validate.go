package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/config"
)

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", `vpipe validate -c FILE

Decodes FILE strictly (an unknown key is an error), fills the defaults and
checks every value, printing every problem with its key path. Exit status 0
when the file is valid, 1 when it is not.`, stderr)
	path := fs.String("c", "", "the configuration `file` to check (required)")
	fs.StringVar(path, "config", "", "same as -c")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if _, err := config.Load(*path); err != nil {
		return fmt.Errorf("%s:\n%w", *path, err)
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return nil
}

func cmdVersion(stdout io.Writer) {
	fmt.Fprintf(stdout, "vpipe %s (event schema %s, ECS %s, %s %s/%s)\n",
		version, pipeline.SchemaVersion, pipeline.ECSVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			fmt.Fprintf(stdout, "  %s %s\n", d.Path, d.Version)
		}
	}
}
