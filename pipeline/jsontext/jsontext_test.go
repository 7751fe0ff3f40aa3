package jsontext

import (
	"encoding/json"
	"testing"
)

func TestAppendUnescaped(t *testing.T) {
	tests := []struct {
		name, raw string
		ok        bool
	}{
		{"plain", `hello`, true},
		{"escapes", `a\"b\\c\/d\b\f\n\r\t`, true},
		{"unicode", `caf\u00e9 \u65e5`, true},
		{"surrogate pair", `\ud83d\ude00`, true},
		{"lone surrogate", `\ud83d x`, true},
		{"bad escape", `a\x`, false},
		{"short unicode", `\u12`, false},
		{"trailing backslash", `a\`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := AppendUnescaped(nil, []byte(tt.raw))
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			var want string
			if err := json.Unmarshal([]byte(`"`+tt.raw+`"`), &want); err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Errorf("got %q, want %q (encoding/json)", got, want)
			}
		})
	}
}
