package httpin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vpipe/vpipe/pipeline"
)

// discardPublisher acknowledges every event at once; with encode it first
// encodes it as the Kafka producer does.
type discardPublisher struct {
	encode bool
	buf    []byte
}

func (p *discardPublisher) Publish(_ context.Context, e *pipeline.Event, done func(error)) error {
	if p.encode {
		p.buf = e.AppendJSON(pipeline.AppendKey(p.buf[:0], e))
	}
	done(nil)
	return nil
}

// ndjsonBody returns n events of about 250 bytes, one per line: objects in
// vpipe's ECS shape (ecs) or webhook objects that are not (generic).
func ndjsonBody(n int, ecs bool) []byte {
	var b bytes.Buffer
	for i := range n {
		start := b.Len()
		if ecs {
			fmt.Fprintf(&b, `{"@timestamp":"2024-05-01T12:00:%02d.123Z","event":{"kind":"alert","severity":3},"host":{"hostname":"esx-%03d.lab.example.com"},"labels":{"rule":"high-cpu"},"message":"CPU usage on host esx-%03d is 97%% for 5 minutes `, i%60, i%200, i%200)
		} else {
			fmt.Fprintf(&b, `{"alertName":"High CPU","event":"AlertFired","severity":"critical","hostName":"esx-%03d.lab.example.com","fields":[{"name":"cpu","content":"97"}],"message":"CPU usage on host esx-%03d is 97%% for 5 minutes `, i%200, i%200)
		}
		b.WriteString(strings.Repeat("x", 250-3-(b.Len()-start)))
		b.WriteString("\"}\n")
	}
	return b.Bytes()
}

// BenchmarkIngestNDJSON posts 1000 events of ~250 bytes as one NDJSON
// body, through the handler in process and over loopback HTTP, into a
// publisher that discards (or encodes, then discards) them.
func BenchmarkIngestNDJSON(b *testing.B) {
	for _, shape := range []string{"ecs", "generic"} {
		body := ndjsonBody(1000, shape == "ecs")
		for _, encode := range []bool{false, true} {
			pub := &discardPublisher{encode: encode}
			h := NewHandler(Config{}, Deps{Parser: lineParser{}, Publisher: pub})
			name := shape
			if encode {
				name += "/encode"
			}
			b.Run(name+"/in-process", func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					req := httptest.NewRequest(http.MethodPost, RouteEvents, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/x-ndjson")
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusAccepted {
						b.Fatalf("answer %d %s", rec.Code, rec.Body)
					}
				}
				b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "events/s")
			})
			b.Run(name+"/http", func(b *testing.B) {
				srv := httptest.NewServer(h)
				defer srv.Close()
				client := srv.Client()
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					resp, err := client.Post(srv.URL+RouteEvents, "application/x-ndjson", bytes.NewReader(body))
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						b.Fatalf("answer %d", resp.StatusCode)
					}
				}
				b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkSplitNDJSON measures validation and splitting alone.
func BenchmarkSplitNDJSON(b *testing.B) {
	body := ndjsonBody(1000, true)
	spans := make([]span, 0, 1000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if spans, err = splitNDJSON(spans[:0], body, 1000); err != nil {
			b.Fatal(err)
		}
	}
}
