package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestScaleOut runs the shape of the deployments with real processes: one
// vpipe with role ingest (its embedded broker standing in for the Kafka
// cluster) and two with role file, in one consumer group, on their own
// configuration files as in compose and Kubernetes. While both stage
// processes run they share the partitions (each writes some of the
// records); once one is stopped with SIGTERM, as a rolling update or a
// scale-down does, the other takes its partitions over, and every record
// sent, before and after, is in one of the two files: nothing lost.
func TestScaleOut(t *testing.T) {
	bin := vpipeBinary(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ingestCfg := write("ingest.yaml", fmt.Sprintf(`
kafka:
  embedded: {listen: 127.0.0.1:0, data_dir: %s/kafka, partitions: 4}
syslog:
  - {transport: tcp, address: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
`, dir))
	ingest := startVpipe(t, bin, "run", "-c", ingestCfg, "--stages", "ingest")
	kafka := ingest.addr(t, "kafka")

	var stages []*process
	var files []string
	for i := range 2 {
		out := filepath.Join(dir, fmt.Sprintf("events-%d.ndjson", i))
		cfg := write(fmt.Sprintf("stage-%d.yaml", i), fmt.Sprintf(`
kafka:
  brokers: [%s]
syslog: []
http: {address: 127.0.0.1:0}
stages:
  file: {path: %s, topics: [firewall], group_id: vpipe-file, batch_size: 20}
`, kafka, out))
		stages = append(stages, startVpipe(t, bin, "run", "-c", cfg, "--stages", "file"))
		files = append(files, out)
	}

	conn, err := net.Dial("tcp", ingest.addr(t, "syslog_tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sent := 0
	send := func(n int) {
		w := bufio.NewWriter(conn)
		for range n {
			// 32 tenants' log labels: keys spread over the 4 partitions.
			fmt.Fprintf(w, "<13>1 2024-05-15T19:41:25.001Z esx01 FIREWALL-PKTLOG - - - 5ff3a4d0 INET match PASS mainrs/1024 OUT 60 TCP 10.0.%d.%d/40000->10.10.10.10/443 S tenant%02dlabel\n",
				sent/250, sent%250, sent%32)
			sent++
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// written counts the records of a file by their (unique) source address.
	written := func(file string) map[string]int {
		out := map[string]int{}
		b, _ := os.ReadFile(file)
		for _, l := range bytes.Split(b, []byte("\n")) {
			var e struct {
				Event struct{ ID string } `json:"event"`
				Src   struct{ IP string } `json:"source"`
			}
			if json.Unmarshal(l, &e) == nil && e.Event.ID != "" {
				out[e.Src.IP]++
			}
		}
		return out
	}
	union := func() map[string]int {
		u := map[string]int{}
		for _, f := range files {
			for k, n := range written(f) {
				u[k] += n
			}
		}
		return u
	}
	// Both members hold partitions once the group has rebalanced: send
	// until each has written some.
	waitFor(t, 60*time.Second, func() bool {
		send(20)
		return len(written(files[0])) > 0 && len(written(files[1])) > 0
	}, func() string {
		return fmt.Sprintf("after %d records the files hold %d and %d\nstage 0:\n%s\nstage 1:\n%s", sent, len(written(files[0])), len(written(files[1])), stages[0].logs, stages[1].logs)
	})
	before := sent
	waitFor(t, 30*time.Second, func() bool { return len(union()) == before }, func() string {
		return fmt.Sprintf("%d of %d records in the files", len(union()), before)
	})

	// Stop one member; the other takes its partitions over.
	stages[0].stop(t)
	stopped := len(written(files[0]))
	send(200)
	waitFor(t, 60*time.Second, func() bool { return len(union()) == sent }, func() string {
		return fmt.Sprintf("%d of %d records in the files after one stage process stopped\nstage 1:\n%s", len(union()), sent, stages[1].logs)
	})
	if n := len(written(files[0])); n != stopped {
		t.Errorf("the stopped process's file grew from %d to %d records", stopped, n)
	}
	// At-least-once: a batch written but not yet committed when the group
	// rebalances is written again by the new owner of its partition.
	again := 0
	for _, n := range union() {
		again += n - 1
	}
	t.Logf("%d records: %d while both ran (%d written by the one stopped later), %d after; %d written twice", sent, before, stopped, sent-before, again)
}
