package nsxfw

// IANA "Assigned Internet Protocol Numbers"
// (https://www.iana.org/assignments/protocol-numbers/): the keyword of each
// number, lower case, as ECS network.transport wants it. Numbers without an
// entry keep only network.iana_number. 89 is "ospf" rather than IANA's
// "OSPFIGP" because that is the name SIEMs search for.
var ianaNames = [256]string{
	0: "hopopt", 1: "icmp", 2: "igmp", 3: "ggp", 4: "ipv4", 5: "st", 6: "tcp",
	7: "cbt", 8: "egp", 9: "igp", 17: "udp", 27: "rdp", 33: "dccp", 41: "ipv6",
	43: "ipv6-route", 44: "ipv6-frag", 46: "rsvp", 47: "gre", 50: "esp", 51: "ah",
	58: "ipv6-icmp", 59: "ipv6-nonxt", 60: "ipv6-opts", 88: "eigrp", 89: "ospf",
	94: "ipip", 97: "etherip", 98: "encap", 103: "pim", 108: "ipcomp",
	112: "vrrp", 115: "l2tp", 124: "isis", 132: "sctp", 136: "udplite",
	137: "mpls-in-ip",
}

// ianaNumbers holds the decimal text of 0..255, so that network.iana_number
// costs no allocation.
var ianaNumbers = func() (t [256]string) {
	for i := range t {
		switch {
		case i < 10:
			t[i] = string(rune('0' + i))
		case i < 100:
			t[i] = string([]byte{byte('0' + i/10), byte('0' + i%10)})
		default:
			t[i] = string([]byte{byte('0' + i/100), byte('0' + i/10%10), byte('0' + i%10)})
		}
	}
	return t
}()

// Transport returns ECS network.transport and network.iana_number for a
// protocol as NSX prints it: a name (TCP, UDP, ICMP, ...) or, after the
// word PROTO, a number. ipv6 says the address family is INET6, where NSX's
// "ICMP" can only be ICMPv6 (IANA 58, "ipv6-icmp"). ok is false for a name
// it does not know.
func Transport(name []byte, number int, ipv6 bool) (transport, iana string, ok bool) {
	if name == nil {
		if number < 0 || number > 255 {
			return "", "", false
		}
		if number == 1 && ipv6 {
			// "PROTO 1" in an INET6 line is still IANA 1 as printed.
			return ianaNames[1], ianaNumbers[1], true
		}
		return ianaNames[number], ianaNumbers[number], true
	}
	switch string(name) {
	case "TCP", "tcp":
		return "tcp", "6", true
	case "UDP", "udp":
		return "udp", "17", true
	case "ICMP", "icmp":
		if ipv6 {
			return "ipv6-icmp", "58", true
		}
		return "icmp", "1", true
	case "ICMP6", "ICMPV6", "IPV6-ICMP", "icmp6", "ipv6-icmp":
		return "ipv6-icmp", "58", true
	case "IGMP", "igmp":
		return "igmp", "2", true
	case "GRE", "gre":
		return "gre", "47", true
	case "ESP", "esp":
		return "esp", "50", true
	case "AH", "ah":
		return "ah", "51", true
	case "SCTP", "sctp":
		return "sctp", "132", true
	case "OSPF", "ospf":
		return "ospf", "89", true
	case "VRRP", "vrrp":
		return "vrrp", "112", true
	}
	return "", "", false
}
