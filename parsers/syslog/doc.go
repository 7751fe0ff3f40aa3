// Package syslog parses the syslog envelope (RFC 5424, RFC 3164) and
// frames syslog streams (RFC 6587 over TCP, RFC 5425 over TLS).
//
// Parser.Parse fills an event's envelope fields and returns the MSG part
// for the format parsers. Scanner splits a byte stream into frames.
//
// # Why a hand-written parser
//
// github.com/leodido/go-syslog/v4 (a Ragel state machine) is correct and
// well tested, but it builds a new rfc5424.SyslogMessage per record with
// *string fields and a map of maps for structured data, so every message
// allocates, and nothing can alias the event's buffer as the
// pipeline.Event ownership rules want. It also knows none of the RFC 3164
// variants VMware sends (ISO 8601 timestamps after the PRI, the ESXi 8
// "No(13)" marker, header-less local-file lines). The hand-written parser
// aliases e.Original, reuses the event's structured-data slices and does
// not allocate.
//
// BenchmarkParse, one core (GOMAXPROCS=1, AMD EPYC, shared machine), the
// same RFC 5424 lines through both (vpipe's figure includes copying the
// line into the event):
//
//	line                              hand-written                go-syslog rfc5424 (best effort)
//	NSX DFW, 175 B, nil SD            142 ns, 7.0 M msg/s, 0 alloc  475 ns, 2.1 M msg/s, 6 allocs (403 B)
//	gateway firewall, 277 B, 1 SD-ELEMENT  225 ns, 4.4 M msg/s, 0 alloc  1180 ns, 0.85 M msg/s, 19 allocs (1080 B)
//	VeloCloud RFC 3164, 178 B         228 ns, 4.4 M msg/s, 0 alloc  (no RFC 3164 variant compared)
//
// BenchmarkScanner frames ~250-byte messages at about 8 GB/s
// (non-transparent) and 11-13 GB/s (octet counting) on one core, without
// allocating per frame.
//
// # RFC 3164 heuristics
//
// RFC 3164 has no grammar that separates HOSTNAME, TAG and message text, so
// Parse reads it best effort (RFC 3164 §4.1.2, §4.1.3, §4.3):
//   - the timestamp is "Mmm dd hh:mm:ss" (the year chosen closest to Now)
//     or ISO 8601; without a PRI, a record must start with one;
//   - a word "name:", "name[pid]:" or "name[pid]" is the TAG (AppName,
//     ProcID); the word before it, if any, is the HOSTNAME;
//   - with a PRI and a timestamp but no recognisable TAG, the first word is
//     the HOSTNAME (§4.1.2); without a PRI (local files) it is not, so that
//     "2018-07-03T19:44:09.749Z b6507827 INET ..." keeps its first word in
//     the message;
//   - an ESXi 8 marker such as "No(13)" before the TAG is skipped and, when
//     the record had no PRI, gives the priority.
package syslog
