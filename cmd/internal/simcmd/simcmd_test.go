package simcmd

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"ok", []string{"-listen", "x"}, nil},
		{"help", []string{"-h"}, flag.ErrHelp},
		{"unknown flag", []string{"-nope"}, ErrUsage},
		{"positional", []string{"extra"}, ErrUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("sim", flag.ContinueOnError)
			var out strings.Builder
			fs.SetOutput(&out)
			fs.String("listen", "", "")
			if err := Parse(fs, tt.args); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Parse(%q) = %v, want %v", tt.args, err, tt.want)
			}
			if tt.want == ErrUsage && !strings.Contains(out.String(), "-listen") {
				t.Errorf("usage not printed: %q", out.String())
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	var out strings.Builder
	for _, tt := range []struct {
		err  error
		want int
	}{{nil, 0}, {flag.ErrHelp, 0}, {ErrUsage, 2}, {errors.New("boom"), 1}} {
		if got := ExitCode("sim", tt.err, &out); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	if out.String() != "sim: boom\n" {
		t.Errorf("printed %q, want only the failure", out.String())
	}
}

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "up")
		})}, ln)
	}()
	resp, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "up" {
		t.Fatalf("served %q", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after shutdown = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after ctx ended")
	}
	// A listener that fails: Serve returns its error at once.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	ln2.Close()
	if err := Serve(context.Background(), &http.Server{}, ln2); err == nil {
		t.Fatal("Serve on a closed listener returned nil")
	}
}
