// Package nsxfw parses NSX-T 3.x / NSX 4.x firewall packet logs: the
// distributed firewall (DFW) lines that ESXi hosts write (dataset nsx.dfw)
// and the Edge gateway firewall lines (dataset nsx.gateway_firewall).
//
// The layouts, field meanings and the sources they come from are in
// shared/reference/formats.md (sections 1, 2 and 7). In short:
//
//	DFW:     [<hash>] <AF> <reason> <action> [<ruleset>/]<rule> <dir> <len> <proto> <src>[/<port>]-><dst>[/<port>] [<flags>] [<label>]
//	DFW end: [<hash>] <AF> TERM [<action>] [<ruleset>/]<rule> <dir> <proto> [<term-reason>] <src>-><dst> <pkts>/<pkts> <bytes>/<bytes> [<label>]
//	Edge:    <<vrf> <iface-hex>> <AF> reason-<reason> <action> <rule> <dir> <len> <proto> <src>-><dst> [<flags>]
//
// The same DFW body arrives under several headers (a bare local-file line,
// RFC 3164 tags FIREWALL-PKTLOG[pid]: / FIREWALL_PKTLOG: / dfwpktlogs:, RFC
// 5424 APP-NAME FIREWALL-PKTLOG, the VMware Cloud on AWS JSON wrapper), so
// the parsers key on the body (formats.md §7, pitfall 1) and accept the
// MSG part as parsers/syslog returns it as well as a whole header-less
// line. NSX-V (NSX for vSphere) writes the same grammar; ParseDFW tells the
// two apart by the body and package nsxv uses it for the nsxv.dfw dataset.
//
// Parsing allocates nothing once the event's buffers have grown: every
// string aliases e.Original (pipeline.Event.Alias) or the event's scratch
// space (pipeline.Event.Intern).
package nsxfw
