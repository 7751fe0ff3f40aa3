package ndjson

import (
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vpipe/vpipe/pipeline/stage"
)

// Sanitize maps a value (an enterprise name, a tenant, any event field)
// to one safe file-name component. The mapping is injective, so two
// different values never share a file, and its output is plain ASCII:
//
//   - ASCII letters, digits, '-' and '_' are kept; '.' is kept except as
//     the first character (so no ".", "..", or hidden file);
//   - every other byte, '%' included, becomes %XX (upper-case hex of the
//     byte; a non-ASCII character becomes the %XX of each of its UTF-8
//     bytes): "a/b" → "a%2Fb", "../../etc" → "%2E.%2F..%2Fetc",
//     "Acme Corp" → "Acme%20Corp", "Café" → "Caf%C3%A9", a control
//     character such as a newline → "%0A";
//   - the empty value becomes "%empty" (no escape produces '%' followed
//     by "em");
//   - a result longer than 200 bytes is cut to 180 and ends in "%~" and
//     16 hex digits of the FNV-1a 64 hash of the whole value ('~' never
//     follows '%' otherwise), keeping it below every file system's 255
//     byte limit.
//
// kurtcms/vco-api-ent-event replaced every non-alphanumeric character
// with '-', which maps "a/b" and "a-b" to one directory: two enterprises'
// events in one file. This mapping never does.
func Sanitize(s string) string {
	return string(appendSanitized(nil, s))
}

// appendSanitized appends Sanitize(s) to dst.
func appendSanitized(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "%empty"...)
	}
	const hexDigits = "0123456789ABCDEF"
	start := len(dst)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_',
			c == '.' && i > 0:
			dst = append(dst, c)
		default:
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	if len(dst)-start > 200 {
		h := fnv.New64a()
		h.Write([]byte(s))
		cut := start + 180
		// Do not leave a cut escape behind.
		for i := cut - 2; i < cut; i++ {
			if dst[i] == '%' {
				cut = i
				break
			}
		}
		dst = append(dst[:cut], "%~"...)
		dst = fmt.Appendf(dst, "%016x", h.Sum64())
	}
	return dst
}

// template is a parsed path template: literal text and placeholders.
type template struct {
	parts []part
}

type part struct {
	lit    string
	fields []string // alternatives: the first non-empty value wins
}

// Fields a path template may name, with what they read. Values come from
// the decoded event, or from the Kafka record for kafka.*.
var fields = map[string]func(r *stage.Record) string{
	"organization.id":   func(r *stage.Record) string { return r.Event.Organization.ID },
	"organization.name": func(r *stage.Record) string { return r.Event.Organization.Name },
	"vmware.velocloud.enterprise_id": func(r *stage.Record) string {
		if id := r.Event.VMware.VeloCloud.EnterpriseID; id != 0 {
			return strconv.FormatInt(id, 10)
		}
		return ""
	},
	"vmware.velocloud.enterprise_name": func(r *stage.Record) string { return r.Event.VMware.VeloCloud.EnterpriseName },
	"vmware.velocloud.edge_name":       func(r *stage.Record) string { return r.Event.VMware.VeloCloud.EdgeName },
	"vmware.nsx.log_label":             func(r *stage.Record) string { return r.Event.TenantLabel() },
	"vmware.vcenter.server":            func(r *stage.Record) string { return r.Event.VMware.VCenter.Server },
	"event.dataset":                    func(r *stage.Record) string { return r.Event.Dataset },
	"event.kind":                       func(r *stage.Record) string { return r.Event.Kind },
	"observer.hostname":                func(r *stage.Record) string { return r.Event.Observer.Hostname },
	"observer.product":                 func(r *stage.Record) string { return r.Event.Observer.Product },
	"host.hostname":                    func(r *stage.Record) string { return r.Event.Host.Hostname },
	"log.syslog.hostname":              func(r *stage.Record) string { return r.Event.Syslog.Hostname },
	"log.syslog.appname":               func(r *stage.Record) string { return r.Event.Syslog.AppName },
	"user.name":                        func(r *stage.Record) string { return r.Event.User.Name },
	"date": func(r *stage.Record) string {
		return r.Event.Time().UTC().Format(time.DateOnly)
	},
	"kafka.topic":     func(r *stage.Record) string { return r.Msg.Topic },
	"kafka.key":       func(r *stage.Record) string { return string(r.Msg.Key) },
	"kafka.partition": func(r *stage.Record) string { return strconv.Itoa(r.Msg.Partition) },
}

// FieldNames lists the fields a path template may name.
func FieldNames() []string {
	out := make([]string, 0, len(fields))
	for k := range fields {
		out = append(out, k)
	}
	return out
}

// parseTemplate parses a path template: text with {field} placeholders,
// {a|b} taking the first non-empty of a and b. The text is a relative
// path with '/' between directories; it may not hold "." or ".." parts,
// and each placeholder must be a whole path part or part of one (its
// value can never add a separator: see Sanitize).
func parseTemplate(s string) (template, error) {
	var t template
	if s == "" {
		return t, errors.New("empty")
	}
	if strings.HasPrefix(s, "/") || filepath.IsAbs(s) {
		return t, fmt.Errorf("%q: must be relative to dir", s)
	}
	if strings.ContainsAny(s, "\\\x00") {
		return t, fmt.Errorf("%q: no backslash or NUL", s)
	}
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest, '}')
		if i < 0 {
			if j >= 0 {
				return t, fmt.Errorf("%q: '}' without '{'", s)
			}
			t.parts = append(t.parts, part{lit: rest})
			break
		}
		if j >= 0 && j < i {
			return t, fmt.Errorf("%q: '}' without '{'", s)
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return t, fmt.Errorf("%q: '{' without '}'", s)
		}
		inner := rest[i+1 : i+end]
		var alts []string
		for _, f := range strings.Split(inner, "|") {
			f = strings.TrimSpace(f)
			if _, ok := fields[f]; !ok {
				return t, fmt.Errorf("%q: unknown field {%s} (known: %s)", s, f, strings.Join(sortedFields(), ", "))
			}
			alts = append(alts, f)
		}
		t.parts = append(t.parts, part{fields: alts})
		rest = rest[i+end+1:]
	}
	// Check the literal structure with every placeholder as "x".
	var probe strings.Builder
	for _, p := range t.parts {
		if p.fields != nil {
			probe.WriteString("x")
		} else {
			probe.WriteString(p.lit)
		}
	}
	for _, seg := range strings.Split(probe.String(), "/") {
		switch seg {
		case "", ".", "..":
			return t, fmt.Errorf("%q: empty, '.' or '..' path part", s)
		}
	}
	return t, nil
}

func sortedFields() []string {
	out := FieldNames()
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// appendPath appends the relative path of r's file to dst.
func (t template) appendPath(dst []byte, r *stage.Record) []byte {
	for _, p := range t.parts {
		if p.fields == nil {
			dst = append(dst, p.lit...)
			continue
		}
		v := ""
		for _, f := range p.fields {
			if v = fields[f](r); v != "" {
				break
			}
		}
		dst = appendSanitized(dst, v)
	}
	return dst
}

// CheckPath reports what is wrong with a path template, as Open would.
func CheckPath(path string) error {
	_, err := parseTemplate(path)
	return err
}
