package pipeline

import (
	"net/netip"
	"time"
)

// Fixture lines are copied from shared/testdata-samples (sources named
// there); the fields are what the parsers are expected to make of them.

// eventjsonDFW is a typical NSX 4.x DFW session-end record as an ESXi host
// forwards it (RFC 5424, testdata-samples/nsxt-dfw.log), 171 bytes.
func eventjsonDFW() *Event {
	e := &Event{
		Timestamp:    time.Date(2024, 5, 15, 19, 41, 25, 1e6, time.UTC),
		Created:      time.Date(2024, 5, 15, 19, 41, 25, 123456789, time.UTC),
		ID:           "b1f0c0e4a7d2c3f59e61d0a8c4b2e7f1",
		Dataset:      DatasetNSXDFW,
		Action:       "pass",
		Outcome:      "success",
		Original:     []byte(`<13>1 2024-05-15T19:41:25.001Z vcf-w1c1-esxi05.corporate.rjet.com FIREWALL-PKTLOG - - - INET TERM PASS 5096 OUT TCP RST 10.10.10.11/60517->10.10.10.10/443 9/8 1461/4677 DR-Allow`),
		LogSource:    "10.20.30.41:514",
		Observer:     Observer{Hostname: "vcf-w1c1-esxi05.corporate.rjet.com", Type: "firewall", Vendor: "VMware", Product: "NSX"},
		Syslog:       Syslog{PriorityValid: true, Priority: 13, Facility: 1, Severity: 5, Version: 1, Hostname: "vcf-w1c1-esxi05.corporate.rjet.com", AppName: "FIREWALL-PKTLOG"},
		Source:       Endpoint{IP: netip.MustParseAddr("10.10.10.11"), Port: 60517, PortValid: true, Packets: 9, Bytes: 1461, CountersValid: true},
		Destination:  Endpoint{IP: netip.MustParseAddr("10.10.10.10"), Port: 443, PortValid: true, Packets: 8, Bytes: 4677, CountersValid: true},
		Network:      Network{Transport: "tcp", IANANumber: "6", Type: "ipv4", Direction: "egress"},
		Rule:         Rule{ID: "5096"},
		Organization: Organization{ID: "a93c9db9-7471-3192-8d09-a8f7eeda85f9", Name: "acme"},
		Labels:       []Label{{Key: "af", Value: "INET"}, {Key: "site", Value: "vcf-w1"}},
		VMware:       VMware{NSX: NSX{LogLabel: "DR-Allow", Reason: "TERM", TermReason: "RST"}},
	}
	return e
}

// eventjsonGeneric is an RFC 3164 record that no format parser claims
// (RFC 3164 section 5.4, example 1).
func eventjsonGeneric() *Event {
	return &Event{
		Timestamp: time.Date(2026, 10, 11, 22, 14, 15, 0, time.UTC),
		Created:   time.Date(2026, 10, 11, 22, 14, 15, 480000000, time.UTC),
		ID:        "5f2d8c1a9b3e4f60",
		Dataset:   DatasetSyslogGeneric,
		Original:  []byte(`<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8`),
		Message:   `'su root' failed for lonvick on /dev/pts/8`,
		LogSource: "192.0.2.7:40514",
		Syslog:    Syslog{PriorityValid: true, Priority: 34, Facility: 4, Severity: 2, Hostname: "mymachine", AppName: "su"},
	}
}

// eventjsonGateway is an NSX-T Edge gateway firewall record with NSX
// structured data (testdata-samples/nsxt-gateway-fw.log, block 1).
func eventjsonGateway() *Event {
	return &Event{
		Timestamp: time.Date(2020, 9, 21, 22, 14, 12, 80427000, time.UTC),
		Created:   time.Date(2020, 9, 21, 22, 14, 12, 95000000, time.UTC),
		ID:        "7c0d54e2b8f1a6c3",
		Dataset:   DatasetNSXGatewayFW,
		Action:    "pass",
		Outcome:   "success",
		Original:  []byte(`<181>1 2020-09-21T22:14:12.080427+00:00 lur-svc.nsxedge-ob-16404613-1-gdefw NSX 2802 FIREWALL [nsx@6876 comp="nsx-edge" subcomp="datapathd.firewallpkt" level="INFO"] <1 55f1af2f487544e9:b0e059132ad7753d> INET reason-match PASS 1005 OUT 60 TCP 1.1.1.10/45120->91.189.92.38/443 S`),
		LogLevel:  "info",
		LogSource: "10.0.0.5:51514",
		Observer:  Observer{Hostname: "lur-svc.nsxedge-ob-16404613-1-gdefw", IP: netip.MustParseAddr("10.0.0.5"), Type: "firewall", Vendor: "VMware", Product: "NSX"},
		Syslog: Syslog{
			PriorityValid: true, Priority: 181, Facility: 22, Severity: 5, Version: 1,
			Hostname: "lur-svc.nsxedge-ob-16404613-1-gdefw", AppName: "NSX", ProcID: "2802", MsgID: "FIREWALL",
			StructuredData: []SDElement{{ID: "nsx@6876", Params: []SDParam{
				{Name: "comp", Value: "nsx-edge"}, {Name: "subcomp", Value: "datapathd.firewallpkt"}, {Name: "level", Value: "INFO"},
			}}},
		},
		Source:       Endpoint{IP: netip.MustParseAddr("1.1.1.10"), Port: 45120, PortValid: true},
		Destination:  Endpoint{IP: netip.MustParseAddr("91.189.92.38"), Port: 443, PortValid: true},
		Network:      Network{Transport: "tcp", IANANumber: "6", Type: "ipv4", Direction: "egress"},
		Rule:         Rule{ID: "1005"},
		Organization: Organization{ID: "urn:vcloud:org:5e3a6b0c-1d2e-4f50-8a9b-0c1d2e3f4a5b", Name: "lur"},
		Labels:       []Label{{Key: "tenant_route", Value: "label"}},
		VMware: VMware{NSX: NSX{
			Reason: "match", PacketLength: 60, TCPFlags: "S", VRF: "1",
			InterfaceID: "55f1af2f-4875-44e9-b0e0-59132ad7753d",
		}},
	}
}

// eventjsonEveryField sets every field AppendJSON encodes, with text that
// needs escaping and an Original that is not valid UTF-8.
func eventjsonEveryField() *Event {
	cet := time.FixedZone("CET", 3600)
	return &Event{
		Timestamp:     time.Date(2026, 3, 3, 1, 2, 11, 678000000, cet),
		Created:       time.Date(2026, 3, 3, 1, 2, 12, 901234567, cet),
		ID:            "id-\"quoted\"",
		Dataset:       DatasetVeloCloudEvent,
		Kind:          "alert",
		Action:        "drop",
		Outcome:       "failure",
		Reason:        "tunnel\tdown\n",
		Severity:      -3,
		SeverityValid: true,
		Original:      []byte("<14>1 2026-03-03T00:02:11.678Z vco1 VCO - - - Tunnel to [Azure-SIN] \xff\xfe failed \x00"),
		Message:       "Tunnel to [Azure-SIN] failed <b>&</b> \u2028line\u2029 Grüße 日本 \U0001F600",
		Error:         "velocloud: detail at offset 12: want '}'",
		LogLevel:      "notice",
		LogSource:     "[fe80::1%eth0]:514",
		Observer: Observer{
			Hostname: "vco1.example.net", IP: netip.MustParseAddr("fe80::1%eth\"0"),
			Type: "sdwan", Vendor: "VMware", Product: "VeloCloud Orchestrator",
		},
		Host: Host{Hostname: "edge-sin-01"},
		Syslog: Syslog{
			PriorityValid: true, Priority: 14, Facility: 1, Severity: 6, Version: 1,
			Hostname: "vco1", AppName: "VCO", ProcID: "4242", MsgID: "EVT",
			StructuredData: []SDElement{
				{ID: "origin", Params: []SDParam{{Name: "ip", Value: "192.0.2.1"}, {Name: "software", Value: "VCO"}, {Name: "ip", Value: "192.0.2.2"}}},
				{ID: "meta@6876", Params: []SDParam{{Name: "sequenceId", Value: "7"}}},
				{ID: "empty@1"},
			},
		},
		Source: Endpoint{
			IP: netip.MustParseAddr("2001:db8::10"), Port: 0, PortValid: true,
			Packets: 1<<64 - 1, Bytes: 0, CountersValid: true, Domain: "a.example",
		},
		Destination:  Endpoint{IP: netip.MustParseAddr("::ffff:13.76.153.194"), Port: 500, PortValid: true, Domain: "b.example"},
		Network:      Network{Transport: "udp", IANANumber: "17", Type: "ipv6", Direction: "ingress"},
		Rule:         Rule{ID: "1005", Ruleset: "domain-c46", Name: "Allow IKE"},
		Organization: Organization{ID: "24676352-23ed-4cdd-a0db-52f61810de1b", Name: "Ex Corp"},
		User:         User{Name: "svc-vcenter-user", Domain: `VSPHERE.LOCAL\`},
		Labels:       []Label{{Key: "b", Value: "1"}, {Key: "a\"k", Value: "2"}, {Key: "b", Value: "3"}},
		VMware: VMware{
			NSX: NSX{
				LogLabel: "vcd-dfw-label", FilterHash: "8b4a1980", Reason: "match", PacketLength: 84,
				TCPFlags: "SEW", TermReason: "FIN", VRF: "3", InterfaceID: "a91a35d4-acea-4843-8b0f-b4b8b5fe50a4",
			},
			NSXV: NSX{LogLabel: "a5f2c1d0-9e8b-4c7a-b6d5-e4f3a2b1c0d9", FilterHash: "7295", Reason: "TERM", PacketLength: 78},
			VCenter: VCenter{
				Server: "vc1.example.net", EventType: "com.vmware.cis.tagging.attach", Key: 3481177, ChainID: -1,
				ObjectName: "example-vm", ObjectType: "VirtualMachine", ObjectRef: "vm-42",
				Tag: "quarantine", Category: "security", Datacenter: "DC1", ChangeTag: "ct-9",
			},
			VeloCloud: VeloCloud{
				EventID: 2913202, Event: "VPN_DATACENTER_STATUS", Category: "SYSTEM", Severity: "NOTICE",
				EnterpriseID: 1 << 62, EnterpriseName: "Ex Corp", EnterpriseUsername: "admin@example.com",
				EdgeName: "edge-sin-01", SegmentName: "Global Segment",
				Detail: []byte(`{"ikeState":"DOWN","numberP2SA":0,"nested":{"a":[1,2.5e3,true,null,"\u00e9"]}}`),
			},
		},
	}
}
