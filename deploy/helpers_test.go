// Package deploy_test checks the deployment files in this directory
// against the code they deploy: the compose file, the Kubernetes manifests,
// the Dockerfile, the systemd unit, the Grafana dashboard and the
// Prometheus alert rules. No container runs here, so the checks read the
// files (with go.yaml.in/yaml/v3) and hold every image, port, path,
// configuration key, role, topic and metric they use against what exists:
// the cmd/ binaries, vpipe's configuration decoder, the roles and metrics
// declared in the Go sources, and a vpipe built and run for the occasion.
package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// repo is the repository root, relative to this package's directory (the
// working directory of its tests).
const repo = ".."

// readYAML decodes one YAML document of path into v.
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// readYAMLDocs decodes every document of path.
func readYAMLDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// dig walks a decoded YAML or JSON tree along keys (map keys, or list
// indexes as ints) and returns what is there, nil when nothing is.
func dig(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func strs(v any) []string {
	var out []string
	for _, e := range list(v) {
		out = append(out, str(e))
	}
	return out
}

var (
	buildOnce sync.Once
	vpipeBin  string
	buildErr  error
)

// vpipeBinary builds cmd/vpipe once per test run (skipped with -short) and
// returns its path.
func vpipeBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs vpipe; skipped with -short")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vpipe-deploy-test")
		if err != nil {
			buildErr = err
			return
		}
		vpipeBin = filepath.Join(dir, "vpipe")
		cmd := exec.Command("go", "build", "-o", vpipeBin, "./cmd/vpipe")
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/vpipe: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return vpipeBin
}

// process is a running `vpipe run`.
type process struct {
	cmd     *exec.Cmd
	started map[string]any // the "vpipe running" log line: where it listens
	logs    *lockedBuffer
	done    chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startVpipe runs the binary with args and waits for its "vpipe running"
// log line; the process is stopped (SIGTERM) when the test ends.
func startVpipe(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: &lockedBuffer{}, done: make(chan error, 1)}
	running := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.logs.Write(append(line, '\n'))
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m["msg"] == "vpipe running" {
				select {
				case running <- m:
				default:
				}
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { p.stop(t) })
	select {
	case p.started = <-running:
	case err := <-p.done:
		p.done <- err
		t.Fatalf("vpipe %s exited: %v\n%s", strings.Join(args, " "), err, p.logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("vpipe %s did not start\n%s", strings.Join(args, " "), p.logs)
	}
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Errorf("vpipe exited with %v\n%s", err, p.logs)
		}
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("vpipe did not stop within 60s of SIGTERM\n%s", p.logs)
	}
}

// addr returns where the process listens for what ("http", "kafka",
// "syslog_tcp", ...), from its startup line.
func (p *process) addr(t *testing.T, what string) string {
	t.Helper()
	a, ok := p.started[what].(string)
	if !ok {
		t.Fatalf("startup line has no %q: %v", what, p.started)
	}
	return a
}

// waitFor polls cond every 50ms until it holds, failing the test after
// timeout with the message msg().
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal(msg())
		case <-tick.C:
		}
	}
}

// get fetches url and returns its status and body.
func get(url string) (int, []byte, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
