package tagsync

import (
	"slices"
	"strings"
	"testing"

	"github.com/vpipe/vpipe/sinks/nsx"
)

func TestMapping(t *testing.T) {
	m := newMapping(Config{
		Categories: map[string]string{"security": "sec", "Application": "app"},
		Tags:       map[string]string{"PCI DSS": "pci"},
	})
	tag := func(s, t string) nsx.Tag { return nsx.Tag{Scope: s, Tag: t} }
	tests := []struct {
		name        string
		vsphere     []VTag
		nsx         []nsx.Tag
		add, remove []nsx.Tag
		invalid     int
	}{
		{name: "nothing", vsphere: nil, nsx: nil},
		{name: "add, renamed",
			vsphere: []VTag{{"security", "PCI DSS"}, {"Application", "web"}},
			nsx:     []nsx.Tag{tag("owner", "alice")},
			add:     []nsx.Tag{tag("app", "web"), tag("sec", "pci")}},
		{name: "remove only managed scopes",
			vsphere: nil,
			nsx:     []nsx.Tag{tag("sec", "old"), tag("owner", "alice"), tag("", "sec"), tag("Sec", "case")},
			remove:  []nsx.Tag{tag("sec", "old")}},
		{name: "category not allowed",
			vsphere: []VTag{{"other", "x"}, {"Security", "case matters"}},
			nsx:     []nsx.Tag{tag("other", "x")}},
		{name: "in sync",
			vsphere: []VTag{{"security", "a"}, {"security", "a"}},
			nsx:     []nsx.Tag{tag("sec", "a")}},
		{name: "too long for nsx",
			vsphere: []VTag{{"security", strings.Repeat("x", nsx.MaxTagLen+1)}},
			invalid: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desired, invalid := m.desired(tt.vsphere)
			ch := m.diff(tt.nsx, desired)
			if !slices.Equal(ch.Add, tt.add) || !slices.Equal(ch.Remove, tt.remove) || len(invalid) != tt.invalid {
				t.Errorf("add %v remove %v invalid %v; want add %v remove %v, %d invalid", ch.Add, ch.Remove, invalid, tt.add, tt.remove, tt.invalid)
			}
		})
	}
}
