// Package vmware dispatches syslog-borne VMware messages to their format
// parsers: NSX-T / NSX 4.x DFW and gateway firewall (package nsxfw), NSX
// Manager audit log writes (nsxaudit), NSX-V DFW (nsxv), vCenter events
// (vcenter) and VeloCloud Edge firewall logs (velocloud).
//
// Dispatch is cheap so that the common case, a message that is none of
// these, costs a few comparisons: first on the syslog APP-NAME (the tag),
// then, for records whose envelope named no known app, on the first bytes
// of the message. No regular expression runs, and no parser is tried on a
// message that cannot be its format.
package vmware

import (
	"bytes"

	"github.com/vpipe/vpipe/parsers/nsxaudit"
	"github.com/vpipe/vpipe/parsers/nsxfw"
	"github.com/vpipe/vpipe/parsers/nsxv"
	"github.com/vpipe/vpipe/parsers/vcenter"
	"github.com/vpipe/vpipe/parsers/velocloud"
	"github.com/vpipe/vpipe/pipeline"
)

// Dispatcher is the pipeline.FormatParser for every syslog-borne VMware
// format. The zero value is ready to use and safe for concurrent use.
type Dispatcher struct{}

// New returns the VMware FormatParser.
func New() pipeline.FormatParser { return Dispatcher{} }

// Parse implements pipeline.FormatParser.
//
// By APP-NAME (formats.md §1-§5): FIREWALL-PKTLOG, FIREWALL_PKTLOG and
// dfwpktlogs go to the DFW parser, which tells NSX-T from NSX-V by the
// body; NSX to the audit log parser (an audit="true" update="true"
// structured-data element) unless the message starts with the gateway
// firewall's "<vrf iface>" prefix, then to the gateway firewall parser
// (which checks the body, since NSX Manager and Edge log much else under
// the same APP-NAME), or with MSGID FIREWALL-PKTLOG to the DFW parser;
// vpxd to
// vCenter; velocloud.sdwan to the VeloCloud firewall parser. Any other
// APP-NAME, or none, is dispatched on the message's start: a DFW body
// ("INET", a filter hash, a leading timestamp of a local-file line), the
// VMware Cloud on AWS JSON wrapper, an Edge "<vrf iface>" body or
// header-less Edge line, "Event [", "vpxd ", "User ", "VCF " and
// "ACTION=VCF ".
func (Dispatcher) Parse(e *pipeline.Event, msg []byte) bool {
	switch e.Syslog.AppName {
	case "FIREWALL-PKTLOG", "FIREWALL_PKTLOG", "dfwpktlogs":
		return nsxfw.ParseDFW(e, msg, 0) || nsxv.ParseCSV(e, msg)
	case "NSX":
		if len(msg) > 0 && msg[0] != '<' && (nsxaudit.Parser{}).Parse(e, msg) {
			return true
		}
		// NSX's message-ID list names FIREWALL-PKTLOG as the MSGID of
		// packet logs (VCF 9.0 "Log Message IDs", formats.md §1): a DFW
		// body under APP-NAME NSX is read as one.
		return nsxfw.Gateway{}.Parse(e, msg) ||
			(e.Syslog.MsgID == "FIREWALL-PKTLOG" || e.Syslog.MsgID == "FIREWALL_PKTLOG") && nsxfw.ParseDFW(e, msg, 0)
	case "vpxd":
		return vcenter.Parser{}.Parse(e, msg)
	case velocloud.Tag:
		return velocloud.Firewall{}.Parse(e, msg)
	}
	if len(msg) < 4 {
		return false
	}
	var ok bool
	switch c := msg[0]; c {
	case 'I':
		// "INET ..." (no filter hash).
		ok = msg[1] == 'N' && nsxfw.ParseDFW(e, msg, 0)
	case '{':
		// VMC wrapper: {"...","text":"<99>... FIREWALL_PKTLOG: ..."}.
		ok = bytes.Contains(msg, []byte("PKTLOG")) && nsxfw.ParseDFW(e, msg, 0)
	case '<', '[':
		ok = nsxfw.Gateway{}.Parse(e, msg)
	case 'E':
		ok = msg[1] == 'v' && vcenter.Parser{}.Parse(e, msg)
	case 'U':
		// The bare tag sentence only from a record without an APP-NAME: a
		// sentence any other program logs is not a vCenter event.
		ok = msg[1] == 's' && e.Syslog.AppName == "" && vcenter.Parser{}.Parse(e, msg)
	case 'v':
		ok = msg[1] == 'p' && vcenter.Parser{}.Parse(e, msg)
	case 'V':
		ok = msg[1] == 'C' && velocloud.Firewall{}.Parse(e, msg)
	case 'A':
		ok = msg[1] == 'C' && msg[2] == 'T' && velocloud.Firewall{}.Parse(e, msg)
	}
	if ok {
		return true
	}
	if isHex(msg[0]) {
		// A filter hash ("b6507827 INET ...") or a local-file line with its
		// timestamp; ParseDFW gives up within a few tokens otherwise.
		if nsxfw.ParseDFW(e, msg, 0) {
			return true
		}
	}
	if e.Syslog.AppName == "" {
		// A header-less Edge line whose HOSTNAME the envelope parser left
		// in the message: "edge01 NSX 5055 FIREWALL [nsx@6876 ...] <3 ...> ...".
		if i := bytes.Index(msg, []byte(" FIREWALL ")); i > 0 && i < 320 {
			return nsxfw.Gateway{}.Parse(e, msg)
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
