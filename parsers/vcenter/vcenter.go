// Package vcenter parses vCenter Server events (dataset vcenter.event): the
// vpxd "Event [...]" lines that vCenter streams to a remote syslog server,
// the text of a tag attach/detach event, and the event as JSON (the
// EventEx form VEBA and govmomi print), so that every path a tagging event
// can take into vpipe yields the same fields: vmware.vcenter.event_type
// com.vmware.cis.tagging.attach or .detach, vmware.vcenter.tag,
// vmware.vcenter.object.name and user.name.
//
// Sources: vSphere Monitoring and Performance, "Configure Streaming of
// Events to a Remote Syslog Server" (vSphere 6.7 and 8.0,
// https://docs.vmware.com/en/VMware-vSphere/8.0/vsphere-monitoring-performance/GUID-F92A08A1-646A-4DCD-8DB0-47E6D2B49C5D.html)
// for the line layout; shared/reference/formats.md §4 for the samples and
// the tagging event.
package vcenter

import (
	"bytes"
	"strconv"
	"time"

	"github.com/vpipe/vpipe/parsers/internal/offset"

	"github.com/vpipe/vpipe/pipeline"
)

// Tagging event type ids (EventEx.eventTypeId), from the VEBA examples and
// cstraka/NSX-T_Tag-Sync (formats.md §4).
const (
	EventTagAttach = "com.vmware.cis.tagging.attach"
	EventTagDetach = "com.vmware.cis.tagging.detach"
)

// Parser is the pipeline.FormatParser of vCenter events by syslog. It
// accepts a message that starts with "Event [" (the streamed event line),
// the same quoted from APP-NAME on ("vpxd 123 - - Event [...]", as in
// splunk/splunk-connect-for-syslog tests/test_vmware.py), and the bare
// text "User X attached tag T to object O" / "User X detached tag T from
// object O". The zero value is ready to use and safe for concurrent use.
type Parser struct{}

// Parse implements pipeline.FormatParser.
//
// The streamed line is, per the vSphere documentation cited in the
// package comment:
//
//	Event [eventId] [partInfo] [createdTime] [eventType] [severity] [user] [target] [chainId] [desc]
//
// mapped to vmware.vcenter.key, labels.vcenter_part (only when the event
// was split, partInfo other than "1-1"), @timestamp (the event's creation
// time wins over the syslog header's), vmware.vcenter.event_type, log.level
// and event.severity (error 3, warning 4, info 6), user.domain and
// user.name ("DOMAIN\name" is split), vmware.vcenter.object.name,
// vmware.vcenter.chain_id and message. vCenter splits events longer than
// 1024 characters into lines "Event [id] [k-X] [payload]"; the first keeps
// its fields with a cut description, the others carry only the payload,
// kept as message. vmware.vcenter.server is the syslog HOSTNAME.
func (Parser) Parse(e *pipeline.Event, msg []byte) bool {
	msg = bytes.TrimRight(msg, " \t\r\n\x00")
	if bytes.HasPrefix(msg, []byte("Event [")) {
		parseEventLine(e, msg)
		return true
	}
	if bytes.HasPrefix(msg, []byte("vpxd ")) {
		// "vpxd PROCID MSGID SD Event [...]": an RFC 5424 record quoted from
		// APP-NAME on, which the envelope parser cannot read.
		var tok [4][]byte
		i := 0
		for k := range tok {
			s := i
			for i < len(msg) && msg[i] != ' ' {
				i++
			}
			tok[k] = msg[s:i]
			i++
			if i > len(msg) {
				return false
			}
		}
		if !bytes.HasPrefix(msg[i:], []byte("Event [")) {
			return false
		}
		parseEventLine(e, msg[i:])
		if e.Syslog.AppName == "" {
			e.Syslog.AppName = e.Alias(tok[0])
			if !isNil(tok[1]) {
				e.Syslog.ProcID = e.Alias(tok[1])
			}
			if !isNil(tok[2]) {
				e.Syslog.MsgID = e.Alias(tok[2])
			}
		}
		return true
	}
	if bytes.HasPrefix(msg, []byte("User ")) {
		var t tagText
		if !t.parse(msg, false) {
			return false
		}
		setCommon(e)
		t.commit(e, msg)
		return true
	}
	return false
}

// ParseText reads a vCenter event out of free text such as a Log Insight
// alert message: an "Event [...]" line anywhere in it, else a tag
// attach/detach sentence anywhere in it, the object name ending at the end
// of the text or at the first ']' (as nvibert/vTagSync reads Log Insight
// texts, formats.md §4). It reports whether it found one; it leaves e
// untouched otherwise. text must stay unmodified while e is in use.
func ParseText(e *pipeline.Event, text []byte) bool {
	text = bytes.TrimRight(text, " \t\r\n\x00")
	if i := bytes.Index(text, []byte("Event [")); i >= 0 && (i == 0 || text[i-1] == ' ' || text[i-1] == ':') {
		if j := i + len("Event ["); j < len(text) && '0' <= text[j] && text[j] <= '9' {
			parseEventLine(e, text[i:])
			return true
		}
	}
	var t tagText
	if !t.parse(text, true) {
		return false
	}
	setCommon(e)
	t.commit(e, text)
	return true
}

func setCommon(e *pipeline.Event) {
	e.Dataset = pipeline.DatasetVCenterEvent
	e.Observer.Vendor = "VMware"
	e.Observer.Product = "vCenter Server"
	if e.VMware.VCenter.Server == "" {
		e.VMware.VCenter.Server = e.Syslog.Hostname
	}
}

// parseEventLine parses b, which starts with "Event [".
func parseEventLine(e *pipeline.Event, b []byte) {
	setCommon(e)
	base := offset.In(e.Original, b)
	fail := func(at int, want string) {
		setError(e, base, at, want)
	}
	const nFields = 9
	var f [nFields][]byte
	i := len("Event ")
	n := 0
	var partK, partX int
	var partOK bool
	for n < nFields-1 {
		if i >= len(b) || b[i] != '[' {
			break
		}
		end := bytes.Index(b[i+1:], []byte("] ["))
		if end < 0 {
			// The last field of a cut line.
			d := b[i+1:]
			if len(d) > 0 && d[len(d)-1] == ']' {
				d = d[:len(d)-1]
			}
			f[n] = d
			n++
			i = len(b)
			break
		}
		f[n] = b[i+1 : i+1+end]
		n++
		i += 1 + end + 2
		if n == 2 {
			if partK, partX, partOK = part(f[1]); partOK && partK > 1 {
				break
			}
		}
	}
	if n >= 2 && !partOK {
		partK, partX, partOK = part(f[1])
	}
	cont := partOK && partK > 1
	if !cont && n == nFields-1 && i < len(b) && b[i] == '[' {
		// desc: up to the last ']', which it may itself contain.
		d := b[i+1:]
		if len(d) > 0 && d[len(d)-1] == ']' {
			d = d[:len(d)-1]
		} else if !(partOK && partX > 1) {
			fail(len(b), `"]" closing the description`)
		}
		f[nFields-1] = d
		n = nFields
	}
	v := &e.VMware.VCenter
	key, ok := atoi(f[0])
	if !ok {
		fail(len("Event ["), "event key (digits)")
		return
	}
	v.Key = key
	if n >= 2 && !(partK == 1 && partX == 1) {
		e.AddLabel("vcenter_part", e.Alias(f[1]))
		if !partOK {
			fail(len("Event [")+len(f[0])+3, "part info (k-X)")
			return
		}
	}
	if cont {
		// "Event [id] [k-X] [payload-part-k]".
		if i < len(b) {
			p := b[i:]
			if len(p) > 0 && p[0] == '[' {
				p = p[1:]
			}
			if partK == partX && len(p) > 0 && p[len(p)-1] == ']' {
				p = p[:len(p)-1]
			}
			e.Message = e.Alias(p)
		}
		return
	}
	at := func(k int) int { return offset.In(b, f[k]) }
	if n < 3 {
		fail(len(b), "createdTime")
		return
	}
	if t, err := time.Parse(time.RFC3339Nano, e.Alias(f[2])); err == nil {
		e.Timestamp = t.UTC()
	} else {
		fail(at(2), "createdTime (RFC 3339)")
	}
	if n < 4 {
		fail(len(b), "eventType")
		return
	}
	v.EventType = e.Alias(f[3])
	if n < 5 {
		fail(len(b), "severity")
		return
	}
	setSeverity(e, f[4])
	if n < 6 {
		fail(len(b), "user")
		return
	}
	setUser(e, f[5])
	if n < 7 {
		fail(len(b), "target")
		return
	}
	v.ObjectName = e.Alias(f[6])
	if n < 8 {
		fail(len(b), "chainId")
		return
	}
	if len(f[7]) > 0 {
		c, ok := atoi(f[7])
		if !ok {
			fail(at(7), "chainId (digits)")
		}
		v.ChainID = c
	}
	if n < 9 {
		if !(partOK && partX > 1) {
			fail(len(b), "description")
		}
		return
	}
	e.Message = e.Alias(f[8])
	if v.EventType == "" || v.EventType == EventTagAttach || v.EventType == EventTagDetach {
		// Only a tagging event's text is read as one, so that a user event
		// quoting the sentence cannot pose as a tag change.
		var t tagText
		if t.parse(f[8], false) {
			obj := v.ObjectName
			t.commit(e, f[8])
			if obj != "" && v.ObjectName == "" {
				v.ObjectName = obj
			}
		}
	}
}

// tagText is a parsed tag attach/detach sentence.
type tagText struct {
	detach            bool
	user, tag, object []byte
	errAt             int
	errWant           string
}

// parse reads "User <U> attached tag <T> to object <O>" or "User <U>
// detached tag <T> from object <O>". The attach wording is from a real
// event (vmware-samples/vcenter-event-broker-appliance test payload); the
// detach wording is UNCONFIRMED (no real sample found, formats.md §4):
// it follows the attach one, as nvibert/vTagSync's "from object" suggests.
// anywhere allows the sentence inside other text, the object then ending
// at the first ']' as well.
func (t *tagText) parse(b []byte, anywhere bool) bool {
	t.errAt = -1
	verb, sep := []byte(" attached tag "), []byte(" to object ")
	i := bytes.Index(b, verb)
	if i < 0 {
		verb, sep = []byte(" detached tag "), []byte(" from object ")
		if i = bytes.Index(b, verb); i < 0 {
			return false
		}
		t.detach = true
	}
	u := bytes.LastIndex(b[:i], []byte("User "))
	if u < 0 || (!anywhere && u != 0) {
		return false
	}
	t.user = b[u+len("User ") : i]
	if bytes.IndexByte(t.user, ' ') >= 0 || len(t.user) == 0 {
		return false
	}
	rest := b[i+len(verb):]
	j := bytes.Index(rest, sep)
	if j < 0 {
		t.tag = rest
		if anywhere {
			if k := bytes.IndexByte(t.tag, ']'); k >= 0 {
				t.tag = t.tag[:k]
			}
		}
		t.errAt = i + len(verb) + len(rest)
		t.errWant = string(bytes.TrimSpace(sep))
		return true
	}
	t.tag = rest[:j]
	t.object = rest[j+len(sep):]
	if anywhere {
		if k := bytes.IndexByte(t.object, ']'); k >= 0 {
			t.object = t.object[:k]
		}
	}
	return true
}

// commit writes the tag fields; text is the parsed text, message when
// no message is set yet.
func (t *tagText) commit(e *pipeline.Event, text []byte) {
	base := offset.In(e.Original, text)
	v := &e.VMware.VCenter
	if v.EventType == "" {
		if t.detach {
			v.EventType = EventTagDetach
		} else {
			v.EventType = EventTagAttach
		}
	}
	v.Tag = e.Alias(t.tag)
	v.ObjectName = e.Alias(t.object)
	if e.User.Name == "" {
		setUser(e, t.user)
	}
	if e.Message == "" {
		e.Message = e.Alias(text)
	}
	if t.errAt >= 0 {
		setError(e, base, t.errAt, `"`+t.errWant+`"`)
	}
}

// setUser splits "DOMAIN\name" into user.domain and user.name (the ECS
// convention); other forms stay whole in user.name.
func setUser(e *pipeline.Event, u []byte) {
	if k := bytes.IndexByte(u, '\\'); k > 0 && k < len(u)-1 {
		e.User.Domain = e.Alias(u[:k])
		e.User.Name = e.Alias(u[k+1:])
		return
	}
	e.User.Name = e.Alias(u)
}

// setSeverity maps vCenter's EventSeverity (error, warning, info, user)
// to log.level as printed and event.severity on the syslog scale.
func setSeverity(e *pipeline.Event, s []byte) {
	e.LogLevel = e.Alias(s)
	switch string(s) {
	case "error":
		e.Severity, e.SeverityValid = 3, true
	case "warning":
		e.Severity, e.SeverityValid = 4, true
	case "info":
		e.Severity, e.SeverityValid = 6, true
	}
}

// part parses partInfo "k-X".
func part(b []byte) (k, x int, ok bool) {
	d := bytes.IndexByte(b, '-')
	if d <= 0 {
		return 0, 0, false
	}
	a, ok1 := atoi(b[:d])
	c, ok2 := atoi(b[d+1:])
	if !ok1 || !ok2 || a < 1 || a > c || c > 1<<20 {
		return 0, 0, false
	}
	return int(a), int(c), true
}

func setError(e *pipeline.Event, base, at int, want string) {
	if e.Error != "" {
		return
	}
	var buf [160]byte
	b := append(buf[:0], "vcenter.event: expected "...)
	b = append(b, want...)
	b = append(b, " at byte "...)
	if base >= 0 {
		at += base
	}
	b = strconv.AppendInt(b, int64(at), 10)
	if base < 0 {
		b = append(b, " of the text"...)
	}
	e.Error = e.Intern(b)
}

func atoi(t []byte) (int64, bool) {
	if len(t) == 0 || len(t) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func isNil(t []byte) bool { return len(t) == 1 && t[0] == '-' }
