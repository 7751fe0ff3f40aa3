package nsxfw

import (
	"bytes"
	"net/netip"
	"strconv"
	"unsafe"

	"github.com/vpipe/vpipe/pipeline"
)

// record is one packet-log body, parsed without touching the event, so
// that a body that turns out not to be a packet log leaves the event as it
// was. Byte slices alias the parsed body.
type record struct {
	vrf, iface []byte // gateway "<vrf iface>" prefix
	hash       []byte
	inet6      bool
	reason     []byte // "reason-" prefix removed
	term       bool
	action     []byte
	ruleset    []byte
	ruleID     []byte
	ingress    bool
	egress     bool
	pktLen     uint32
	protoName  []byte // TCP, UDP, ICMP, ... (nil after PROTO)
	protoNum   int    // after PROTO; -1 when absent
	protoRaw   []byte // the PROTO number as printed
	termReason []byte
	src, dst   netip.Addr
	sport      uint16
	dport      uint16
	hasSport   bool
	hasDport   bool
	flags      []byte
	counters   bool
	pktsIn     uint64
	pktsOut    uint64
	bytesIn    uint64
	bytesOut   uint64
	label      []byte

	errAt   int    // offset in the body of the first problem; -1 for none
	errWant string // what was expected there
}

// fail records the first problem and ends the parse: the body looked like
// a packet log, so the caller keeps what was parsed.
func (r *record) fail(at int, want string) bool {
	r.errAt, r.errWant = at, want
	return true
}

// parse reads body b. It returns false when b is not a packet-log body (no
// address family where one must be); otherwise true, with errAt >= 0 when
// the body stopped matching the grammar. gateway expects the Edge's
// "<vrf iface>" prefix (formats.md §2).
func (r *record) parse(b []byte, gateway bool) bool {
	r.errAt = -1
	r.protoNum = -1
	s, e := token(b, 0)
	if gateway {
		if s >= len(b) || b[s] != '<' {
			return false
		}
		// "<1 55f1af2f487544e9:b0e059132ad7753d>": VRF id, interface UUID.
		vs, ve := token(b, s+1)
		if ve == vs || !allDigits(b[vs:ve]) {
			return false
		}
		is, ie := token(b, ve)
		end := bytes.IndexByte(b[is:ie], '>')
		if end <= 0 {
			return false
		}
		r.vrf, r.iface = b[vs:ve], b[is:is+end]
		s, e = token(b, is+end+1)
	}
	t := b[s:e]
	if !isAF(t) {
		// Optional filter hash (formats.md §7, pitfall 2): 8 hex digits on
		// NSX-T, decimal on NSX-V 6.2.3+, absent elsewhere.
		if !isHash(t) {
			return false
		}
		r.hash = t
		s, e = token(b, e)
		t = b[s:e]
		if !isAF(t) {
			return false
		}
	}
	r.inet6 = len(t) == 5
	s, e = token(b, e)
	if s == e {
		// "INET" alone is not enough to claim the line.
		return false
	}
	t = b[s:e]
	// The Edge prints "reason-match" where the DFW prints "match"
	// (formats.md §2); both are stored as "match".
	t = bytes.TrimPrefix(t, []byte("reason-"))
	if !isWord(t) {
		return false
	}
	r.reason = t
	r.term = string(t) == "TERM"

	s, e = token(b, e)
	t = b[s:e]
	if !r.term && !isUpperWord(t) {
		// "INET <word> <not an action>" is not a packet log: claim a line
		// only on an address family, a reason and an action (or TERM).
		return false
	}
	if isUpperWord(t) {
		r.action = t
		s, e = token(b, e)
	} else if !r.term {
		// Only TERM lines may lack the action: NSX-V and VMC print none
		// there, NSX 4.x does (formats.md §1 "Version differences", §7
		// pitfall 3).
		return r.fail(s, "action (PASS, DROP, ...)")
	}

	if s == e {
		return r.fail(s, "rule id")
	}
	t = b[s:e]
	id := t
	if k := bytes.LastIndexByte(t, '/'); k >= 0 {
		r.ruleset, id = t[:k], t[k+1:]
		if k == 0 {
			return r.fail(s, "ruleset before '/'")
		}
	}
	if !allDigits(id) {
		return r.fail(e-len(id), "rule id (digits)")
	}
	r.ruleID = id

	s, e = token(b, e)
	switch string(b[s:e]) {
	case "IN":
		r.ingress = true
	case "OUT":
		r.egress = true
	default:
		return r.fail(s, "direction (IN or OUT)")
	}

	if !r.term {
		// TERM lines have no packet length (formats.md §1).
		s, e = token(b, e)
		n, ok := atoi(b[s:e])
		if !ok || n > 1<<32-1 {
			return r.fail(s, "packet length")
		}
		r.pktLen = uint32(n)
	}

	s, e = token(b, e)
	t = b[s:e]
	switch {
	case string(t) == "PROTO":
		// "PROTO 2": two tokens (formats.md §7, pitfall 4).
		s, e = token(b, e)
		n, ok := atoi(b[s:e])
		if !ok || n > 255 {
			return r.fail(s, "protocol number after PROTO")
		}
		r.protoNum, r.protoRaw = int(n), b[s:e]
	case isWord(t) && !allDigits(t):
		r.protoName = t
	default:
		return r.fail(s, "protocol (TCP, UDP, ICMP or PROTO n)")
	}

	s, e = token(b, e)
	t = b[s:e]
	if r.term && isUpperWord(t) {
		// TCP close reason: RST, FIN, TIMEOUT (formats.md §1).
		r.termReason = t
		s, e = token(b, e)
		t = b[s:e]
	}
	arrow := bytes.Index(t, []byte("->"))
	if arrow < 0 {
		return r.fail(s, "source->destination")
	}
	var ok bool
	if r.src, r.sport, r.hasSport, ok = endpoint(t[:arrow]); !ok {
		return r.fail(s, "source address")
	}
	if r.dst, r.dport, r.hasDport, ok = endpoint(t[arrow+2:]); !ok {
		return r.fail(s+arrow+2, "destination address")
	}

	s, e = token(b, e)
	t = b[s:e]
	// TCP flags only follow the addresses of TCP packet lines; a label
	// that looks like flags ("SA") cannot be told apart and is read as
	// flags (formats.md §7, pitfall 5).
	if !r.term && isTCP(r.protoName) && isFlags(t) {
		r.flags = t
		s, e = token(b, e)
		t = b[s:e]
	}
	if in, out, ok := pair(t); ok {
		// TERM counters: packets in/out, then bytes in/out.
		r.pktsIn, r.pktsOut = in, out
		s2, e2 := token(b, e)
		in, out, ok = pair(b[s2:e2])
		if !ok {
			return r.fail(s2, "byte counters (in/out)")
		}
		r.counters = true
		r.bytesIn, r.bytesOut = in, out
		s, e = token(b, e2)
	}
	if s < len(b) {
		// The log label (rule tag) is the rest of the line: NSX prints it
		// last, and a tag may contain spaces (formats.md §1).
		r.label = bytes.TrimRight(b[s:], " \t\r\n\x00")
	}
	return true
}

// commit writes r into e. nsx is e.VMware.NSX or e.VMware.NSXV. base is
// the offset of the body in e.Original (-1 when the body is not part of
// it, as for the unescaped VMC wrapper text); where names the body in the
// error text.
func (r *record) commit(e *pipeline.Event, nsx *pipeline.NSX, dataset, product string, base int) {
	e.Dataset = dataset
	e.Observer.Vendor = "VMware"
	e.Observer.Product = product
	e.Observer.Type = "firewall"
	nsx.FilterHash = e.Alias(r.hash)
	if r.inet6 {
		e.Network.Type = "ipv6"
	} else {
		e.Network.Type = "ipv4"
	}
	nsx.Reason = e.Alias(r.reason)
	if r.action != nil {
		e.Action, e.Outcome = Action(e, r.action)
	}
	e.Rule.Ruleset = e.Alias(r.ruleset)
	e.Rule.ID = e.Alias(r.ruleID)
	switch {
	case r.ingress:
		e.Network.Direction = "ingress"
	case r.egress:
		e.Network.Direction = "egress"
	}
	nsx.PacketLength = r.pktLen
	switch {
	case r.protoNum >= 0:
		e.Network.Transport, e.Network.IANANumber, _ = Transport(nil, r.protoNum, r.inet6)
	case r.protoName != nil:
		var ok bool
		e.Network.Transport, e.Network.IANANumber, ok = Transport(r.protoName, -1, r.inet6)
		if !ok {
			e.Network.Transport = Lower(e, r.protoName)
		}
	}
	nsx.TermReason = e.Alias(r.termReason)
	e.Source.IP, e.Destination.IP = r.src, r.dst
	e.Source.Port, e.Source.PortValid = r.sport, r.hasSport
	e.Destination.Port, e.Destination.PortValid = r.dport, r.hasDport
	nsx.TCPFlags = e.Alias(r.flags)
	if r.counters {
		// The first number of each pair counts what the source sent: both
		// real lines agree (a DNS query of 72 bytes answered with 103 in
		// the VMC sample, an HTTPS client sending 1461 and receiving 4677
		// bytes in the NSX 4.x sample); the docs only say "in/out".
		e.Source.Packets, e.Destination.Packets = r.pktsIn, r.pktsOut
		e.Source.Bytes, e.Destination.Bytes = r.bytesIn, r.bytesOut
		e.Source.CountersValid, e.Destination.CountersValid = true, true
	}
	nsx.LogLabel = e.Alias(r.label)
	nsx.VRF = e.Alias(r.vrf)
	if r.iface != nil {
		nsx.InterfaceID = interfaceID(e, r.iface)
	}
	if r.errAt >= 0 {
		setError(e, dataset, base, r.errAt, r.errWant)
	}
}

// setError sets e.Error to "<dataset>: expected <want> at byte <n>", n
// counted in e.Original when base >= 0, else in the unwrapped text.
func setError(e *pipeline.Event, dataset string, base, at int, want string) {
	var buf [160]byte
	b := append(buf[:0], dataset...)
	b = append(b, ": expected "...)
	b = append(b, want...)
	if base >= 0 {
		b = append(b, " at byte "...)
		b = strconv.AppendInt(b, int64(base+at), 10)
	} else {
		b = append(b, " at byte "...)
		b = strconv.AppendInt(b, int64(at), 10)
		b = append(b, " of the unwrapped text"...)
	}
	e.Error = e.Intern(b)
}

// Action maps an NSX firewall action (formats.md §1 and §2: PASS, DROP,
// REJECT, NAT, NONAT, RDR, NORDR, PUNT, REDIRECT, COPY, PBR, LB) to ECS
// event.action, in lower case, and event.outcome: PASS succeeded, DROP
// and REJECT failed, the others decide nothing about delivery ("unknown").
// An action it does not know is lower-cased into e's scratch space.
func Action(e *pipeline.Event, a []byte) (action, outcome string) {
	switch string(a) {
	case "PASS":
		return "pass", "success"
	case "DROP":
		return "drop", "failure"
	case "REJECT":
		return "reject", "failure"
	case "NAT":
		return "nat", "unknown"
	case "NONAT":
		return "nonat", "unknown"
	case "RDR":
		return "rdr", "unknown"
	case "NORDR":
		return "nordr", "unknown"
	case "PUNT":
		return "punt", "unknown"
	case "REDIRECT":
		return "redirect", "unknown"
	case "COPY":
		return "copy", "unknown"
	case "PBR":
		return "pbr", "unknown"
	case "LB":
		return "lb", "unknown"
	}
	return Lower(e, a), "unknown"
}

// Lower returns b in ASCII lower case, aliasing b (which must be part of
// e.Original) when it already is, else copying it into e's scratch space.
func Lower(e *pipeline.Event, b []byte) string {
	upper := false
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			upper = true
			break
		}
	}
	if !upper {
		return e.Alias(b)
	}
	var buf [64]byte
	out := buf[:0]
	if len(b) > len(buf) {
		out = make([]byte, 0, len(b))
	}
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out = append(out, c)
	}
	return e.Intern(out)
}

// interfaceID turns the Edge's "55f1af2f487544e9:b0e059132ad7753d" back
// into the interface UUID 55f1af2f-4875-44e9-b0e0-59132ad7753d (formats.md
// §2: dashes removed, split in two halves by ':'). Anything else is kept as
// printed.
func interfaceID(e *pipeline.Event, b []byte) string {
	if len(b) != 33 || b[16] != ':' {
		return e.Alias(b)
	}
	var hex [32]byte
	copy(hex[:16], b[:16])
	copy(hex[16:], b[17:])
	for _, c := range hex {
		if !isHex(c) {
			return e.Alias(b)
		}
	}
	var out [36]byte
	copy(out[0:8], hex[0:8])
	out[8] = '-'
	copy(out[9:13], hex[8:12])
	out[13] = '-'
	copy(out[14:18], hex[12:16])
	out[18] = '-'
	copy(out[19:23], hex[16:20])
	out[23] = '-'
	copy(out[24:36], hex[20:32])
	return e.Intern(out[:])
}

// endpoint parses "ip/port" or "ip" (ICMP and PROTO n have no port). IPv6
// addresses contain ':' and NSX prints them uncompressed, so the port is
// split off at the last '/' (formats.md §7, pitfall 4).
func endpoint(b []byte) (ip netip.Addr, port uint16, hasPort, ok bool) {
	a := b
	if k := bytes.LastIndexByte(b, '/'); k >= 0 {
		n, ok := atoi(b[k+1:])
		if !ok || n > 65535 {
			return ip, 0, false, false
		}
		port, hasPort, a = uint16(n), true, b[:k]
	}
	if len(a) == 0 || !(isHex(a[0]) || a[0] == ':') {
		return ip, 0, false, false
	}
	ip, err := netip.ParseAddr(unsafe.String(&a[0], len(a)))
	if err != nil {
		return ip, 0, false, false
	}
	return ip, port, hasPort, true
}

// token returns the bounds of the space-separated token at or after b[i].
// s == e == len(b) at the end of b.
func token(b []byte, i int) (s, e int) {
	for i < len(b) && b[i] == ' ' {
		i++
	}
	s = i
	for i < len(b) && b[i] != ' ' {
		i++
	}
	return s, i
}

func isAF(t []byte) bool { return string(t) == "INET" || string(t) == "INET6" }

// isHash reports whether t can be a filter hash: 1 to 16 hex digits.
func isHash(t []byte) bool {
	if len(t) == 0 || len(t) > 16 {
		return false
	}
	for _, c := range t {
		if !isHex(c) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func allDigits(t []byte) bool {
	if len(t) == 0 {
		return false
	}
	for _, c := range t {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// atoi parses up to 19 decimal digits.
func atoi(t []byte) (uint64, bool) {
	if len(t) == 0 || len(t) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range t {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// pair parses "<n>/<n>".
func pair(t []byte) (a, b uint64, ok bool) {
	k := bytes.IndexByte(t, '/')
	if k <= 0 {
		return 0, 0, false
	}
	if a, ok = atoi(t[:k]); !ok {
		return 0, 0, false
	}
	if b, ok = atoi(t[k+1:]); !ok {
		return 0, 0, false
	}
	return a, b, true
}

// isWord: letters, digits, '-' and '_' (reasons like "bad-offset",
// "SpoofGuard").
func isWord(t []byte) bool {
	if len(t) == 0 {
		return false
	}
	for _, c := range t {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isUpperWord: upper-case letters and '_' only (actions, protocol names,
// TCP close reasons), at least two.
func isUpperWord(t []byte) bool {
	if len(t) < 2 {
		return false
	}
	for _, c := range t {
		if !('A' <= c && c <= 'Z' || c == '_') {
			return false
		}
	}
	return true
}

func isTCP(name []byte) bool { return string(name) == "TCP" || string(name) == "tcp" }

// isFlags: the TCP flag letters of formats.md §1 (S, A, P, U, F, R, and
// the E and W seen in the docs' samples).
func isFlags(t []byte) bool {
	if len(t) == 0 || len(t) > 8 {
		return false
	}
	for _, c := range t {
		switch c {
		case 'S', 'A', 'P', 'U', 'F', 'R', 'E', 'W':
		default:
			return false
		}
	}
	return true
}
