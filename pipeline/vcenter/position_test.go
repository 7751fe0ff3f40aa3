package vcenter

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/types"
)

func ev(key int32, t time.Time) *types.Event { return &types.Event{Key: key, CreatedTime: t} }

func TestPositionCovers(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 500_000_000, time.UTC)
	var p position
	for _, e := range []*types.Event{ev(10, t0.Add(-time.Second)), ev(11, t0), ev(12, t0)} {
		p.advance(e)
	}
	// A round trip through the checkpoint's JSON keeps it.
	b, _ := json.Marshal(&p)
	var q position
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ev   *types.Event
		want bool
	}{
		{"older", ev(9, t0.Add(-time.Second)), true},
		{"same time, delivered key", ev(12, t0), true},
		{"same time, new key", ev(13, t0), false},
		{"later", ev(13, t0.Add(time.Millisecond)), false},
		{"later, key wrapped", ev(math.MinInt32, t0.Add(time.Millisecond)), false},
		{"later, key reset below", ev(1, t0.Add(time.Second)), false},
		{"same time, same key as a wrapped one", ev(11, t0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := q.covers(tt.ev); got != tt.want {
				t.Errorf("covers(key %d at %v) = %v; want %v (position %s)", tt.ev.Key, tt.ev.CreatedTime, got, tt.want, b)
			}
		})
	}
	if (&position{}).covers(ev(1, t0)) {
		t.Error("an empty position covers an event")
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Name: "vc1", Conn: ConnConfig{URL: "https://vc.example.com", Username: "u"}}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no name", func(c *Config) { c.Name = "" }, "name: missing"},
		{"no url", func(c *Config) { c.Conn.URL = "" }, "url: missing"},
		{"bad url", func(c *Config) { c.Conn.URL = "vc.example.com" }, "want https://host"},
		{"page size", func(c *Config) { c.PageSize = 5000 }, "page_size"},
		{"backoff", func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Minute, time.Second }, "max_backoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.WithDefaults().Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate = %v; want %q", err, tt.want)
			}
		})
	}
}
