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
// *string fields and a map of maps for structured data, so each message
// costs several allocations, and it cannot alias the event's buffer, which
// the pipeline.Event ownership rules ask for. It also has no notion of the
// RFC 3164 variants VMware sends (ISO 8601 timestamps after the PRI, the
// ESXi 8 "No(13)" marker, header-less local-file lines). The hand-written
// parser aliases e.Original, reuses the event's structured-data slices and
// allocates nothing. Numbers are in BenchmarkParse (parser_bench_test.go).
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
