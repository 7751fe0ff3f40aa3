package httpin

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzSplit feeds any body to the three splitters. None may panic; what
// they accept must be what encoding/json accepts (plus UTF-8 validity), with
// every span inside the body, and the "message" found must be the one
// encoding/json decodes.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		`{"message":"hi"}`,
		`[{"message":"a\"b\u00e9\ud83d\ude00"},{"n":[1,-2.5e+3,true,false,null,{}]}]`,
		"{\"a\":1}\r\n\r\n{\"message\":\"x\",\"message\":2}\n",
		"\xef\xbb\xbf{}",
		`[{"a":1},{"b":},{"c":3}]`,
		"{\"m\":\"caf\xe9\"}",
		`{"message":"\ud800"}`,
		`[]`, `[ ]`, `{}`, ``, `[`, `{`, `"x"`, `[1]`, `{"a":01}`, `{"a":1.}`, `{"a":1e}`,
		"<13>1 2024-01-01T00:00:00Z h a - - - msg\r\nline two\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const limit = 1 << 20
		spans, err := splitJSON(nil, body, limit)
		checkSplit(t, "json", body, spans, err)
		stdOK := json.Valid(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))) && utf8.Valid(body)
		if err == nil && !stdOK {
			t.Fatalf("splitJSON accepted %q, which encoding/json rejects", body)
		}
		if err != nil && stdOK && topLevelObjects(body) {
			var be *bodyError
			if !errors.As(err, &be) || !strings.Contains(be.msg, "nested too deeply") {
				t.Fatalf("splitJSON rejected %q, which encoding/json accepts: %v", body, err)
			}
		}

		spans, err = splitNDJSON(nil, body, limit)
		checkSplit(t, "ndjson", body, spans, err)
		if err == nil {
			for _, line := range bytes.Split(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), []byte("\n")) {
				if len(bytes.TrimSpace(line)) > 0 && !json.Valid(line) {
					t.Fatalf("splitNDJSON accepted line %q, which encoding/json rejects", line)
				}
			}
		}

		spans, err = splitLines(nil, body, limit)
		if err != nil {
			t.Fatalf("splitLines: %v", err)
		}
		var rebuilt []byte
		for _, sp := range spans {
			line := body[sp.start:sp.end]
			rest := body[sp.end:]
			ended := len(rest) == 0 || rest[0] == '\n' || rest[0] == '\r' && (len(rest) == 1 || rest[1] == '\n')
			if len(line) == 0 || bytes.IndexByte(line, '\n') >= 0 || !ended {
				t.Fatalf("splitLines gave line %q", line)
			}
			rebuilt = append(rebuilt, line...)
		}
		if want := bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("\r\n"), nil), []byte("\n"), nil); len(rebuilt) > len(want) {
			t.Fatalf("splitLines gave more bytes than the body holds")
		}
	})
}

// checkSplit checks the spans of an accepted body: objects inside it that
// encoding/json decodes, with the same "message".
func checkSplit(t *testing.T, kind string, body []byte, spans []span, err error) {
	t.Helper()
	if err != nil {
		var be *bodyError
		if !errors.As(err, &be) || be.msg == "" {
			t.Fatalf("%s: error %v is not a *bodyError with a message", kind, err)
		}
		return
	}
	for _, sp := range spans {
		if sp.start < 0 || sp.start > sp.end || sp.end > len(body) {
			t.Fatalf("%s: span %+v outside the body of %d bytes", kind, sp, len(body))
		}
		obj := body[sp.start:sp.end]
		var m map[string]json.RawMessage
		if err := json.Unmarshal(obj, &m); err != nil {
			t.Fatalf("%s: span %q is not an object: %v", kind, obj, err)
		}
		var want string
		json.Unmarshal(m["message"], &want)
		var got string
		if sp.msgEnd > 0 {
			if sp.msgStart < sp.start || sp.msgEnd > sp.end {
				t.Fatalf("%s: message %d:%d outside its object %d:%d", kind, sp.msgStart, sp.msgEnd, sp.start, sp.end)
			}
			got = string(appendUnquoted(nil, body[sp.msgStart:sp.msgEnd]))
			if !sp.msgEscaped && got != string(body[sp.msgStart+1:sp.msgEnd-1]) {
				t.Fatalf("%s: unescaped message %q changed when unquoted", kind, body[sp.msgStart:sp.msgEnd])
			}
		}
		if got != want {
			t.Fatalf("%s: message %q, encoding/json says %q in %q", kind, got, want, obj)
		}
	}
}

// topLevelObjects reports whether a valid JSON body is an object or an
// array of objects.
func topLevelObjects(body []byte) bool {
	var v any
	if json.Unmarshal(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), &v) != nil {
		return false
	}
	switch v := v.(type) {
	case map[string]any:
		return true
	case []any:
		for _, e := range v {
			if _, ok := e.(map[string]any); !ok {
				return false
			}
		}
		return true
	}
	return false
}

func TestAppendUnquoted(t *testing.T) {
	tests := []struct{ in, want string }{
		{`""`, ""},
		{`"plain"`, "plain"},
		{`"\"\\\/\b\f\n\r\t"`, "\"\\/\b\f\n\r\t"},
		{`"\u00e9\u20AC"`, "é€"},
		{`"\ud83d\ude00"`, "😀"},
		{`"\ud83d"`, "\ufffd"},
		{`"\ude00x"`, "\ufffdx"},
		{`"\ud83d\u0041"`, "\ufffdA"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := string(appendUnquoted(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("appendUnquoted(%s) = %q, want %q", tt.in, got, tt.want)
			}
			var std string
			if err := json.Unmarshal([]byte(tt.in), &std); err != nil || std != tt.want {
				t.Errorf("encoding/json gives %q, %v: the test is wrong", std, err)
			}
		})
	}
}
