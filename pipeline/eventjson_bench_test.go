package pipeline

import (
	"encoding/json"
	"testing"
	"time"
)

// reportRate reports events per second of wall time, and CPU time per
// event with the events per CPU-second it allows: on a shared machine the
// CPU figures are the ones to compare (one event at a time runs on one
// core, so events/cpu-s is the one-core rate).
func reportRate(b *testing.B, cpuStart time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu := processCPUTime() - cpuStart; cpuStart > 0 && cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}

// eventjsonBenchCases are the events the benchmarks encode and decode.
var eventjsonBenchCases = []struct {
	name string
	e    func() *Event
}{
	{"dfw", eventjsonDFW},
	{"generic", eventjsonGeneric},
	{"gateway", eventjsonGateway},
	{"everyfield", eventjsonEveryField},
}

// BenchmarkAppendJSON encodes into a reused buffer, as the producer does.
// SetBytes is the size of the JSON written.
func BenchmarkAppendJSON(b *testing.B) {
	for _, bc := range eventjsonBenchCases {
		b.Run(bc.name, func(b *testing.B) {
			e := bc.e()
			buf := e.AppendJSON(nil)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			cpu := processCPUTime()
			for b.Loop() {
				buf = e.AppendJSON(buf[:0])
			}
			reportRate(b, cpu)
		})
	}
}

// BenchmarkDecodeJSON decodes into a reused event, as a consumer stage
// does. SetBytes is the size of the JSON read.
func BenchmarkDecodeJSON(b *testing.B) {
	for _, bc := range eventjsonBenchCases {
		b.Run(bc.name, func(b *testing.B) {
			data := bc.e().AppendJSON(nil)
			var e Event
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			cpu := processCPUTime()
			for b.Loop() {
				if err := e.DecodeJSON(data); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, cpu)
		})
	}
}

// BenchmarkDecodeJSONNewEvent decodes into a fresh event each time: the
// cost when a stage keeps every event (no reuse of scratch space).
func BenchmarkDecodeJSONNewEvent(b *testing.B) {
	data := eventjsonDFW().AppendJSON(nil)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu := processCPUTime()
	for b.Loop() {
		var e Event
		if err := e.DecodeJSON(data); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, cpu)
}

// BenchmarkEncodingJSONMap is the baseline a generic decoder gives: the DFW
// event unmarshalled by encoding/json into a map.
func BenchmarkEncodingJSONMap(b *testing.B) {
	data := eventjsonDFW().AppendJSON(nil)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu := processCPUTime()
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, cpu)
}
