package metrictest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestSum(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total"}, []string{"stage", "result"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h_seconds"}, []string{"stage"})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("a", "ok").Add(3)
	c.WithLabelValues("a", "error").Add(2)
	c.WithLabelValues("b", "ok").Add(7)
	g.Set(-4)
	h.WithLabelValues("a").Observe(1)
	h.WithLabelValues("a").Observe(2)
	h.WithLabelValues("b").Observe(3)
	tests := []struct {
		name   string
		metric string
		labels []string
		want   float64
	}{
		{"one series", "c_total", []string{"stage", "a", "result", "ok"}, 3},
		{"label subset sums", "c_total", []string{"stage", "a"}, 5},
		{"all series", "c_total", nil, 12},
		{"no match", "c_total", []string{"stage", "z"}, 0},
		{"unknown label", "c_total", []string{"tenant", "a"}, 0},
		{"gauge", "g", nil, -4},
		{"histogram count", "h_seconds", []string{"stage", "a"}, 2},
		{"missing metric", "nope", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sum(t, reg, tt.metric, tt.labels...); got != tt.want {
				t.Errorf("Sum(%s, %q) = %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
}
