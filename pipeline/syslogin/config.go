package syslogin

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/vpipe/vpipe/parsers/syslog"
)

// Config configures one listener. Zero values take the defaults given on
// each field.
type Config struct {
	// Transport is "udp" (RFC 5426), "tcp" (RFC 6587) or "tls" (RFC 5425).
	Transport string
	// Address is host:port; port 0 picks a free port (see Listener.Addr).
	Address string
	// Framing is for tcp and tls: "auto" (the default: decided per frame),
	// "octet-counting" or "non-transparent". See syslog.Framing.
	Framing string
	// MaxFrame is the largest record kept whole, in bytes; a longer one is
	// truncated to it and counted. Default 64 KiB. For UDP it applies to
	// the datagram.
	MaxFrame int
	// IdleTimeout closes a tcp or tls connection that sent nothing for
	// this long. 0 means never.
	IdleTimeout time.Duration
	// MaxConnections caps the open tcp or tls connections; more are
	// accepted and closed at once. Default 1024.
	MaxConnections int
	// ReadBuffer is SO_RCVBUF in bytes for UDP sockets; 0 keeps the system
	// default. The kernel may cap it (Linux: net.core.rmem_max); the
	// listener logs when it did.
	ReadBuffer int
	// Sockets is the number of UDP sockets bound to Address with
	// SO_REUSEPORT, each with its own reader, so that the kernel spreads
	// senders over them. Default 1.
	Sockets int
	// QueueSize bounds the UDP datagrams received and not yet parsed; when
	// it is full, datagrams are dropped and counted (reason queue_full)
	// rather than blocking the socket reader. Default 16384.
	QueueSize int
	// Workers is the number of UDP workers that parse and publish from the
	// queue. Default Sockets. Records of one sender may be reordered when
	// it is more than 1.
	Workers int
	// DrainTimeout bounds how long, once Serve's context ends, records
	// already received may wait for the publisher; records still waiting
	// after it are dropped and counted (reason shutdown). Default 10s.
	DrainTimeout time.Duration
	// HandshakeTimeout bounds a TLS handshake. Default 10s.
	HandshakeTimeout time.Duration
	// TLS is the server configuration for transport tls (certificates,
	// client authentication, minimum version: the caller's business).
	TLS *tls.Config
}

const (
	defaultMaxFrame         = 64 << 10
	defaultMaxConnections   = 1024
	defaultQueueSize        = 16384
	defaultDrainTimeout     = 10 * time.Second
	defaultHandshakeTimeout = 10 * time.Second
	maxDatagram             = 65535
)

// withDefaults returns cfg with defaults applied and checks it.
func (cfg Config) withDefaults() (Config, syslog.Framing, error) {
	var errs []error
	switch cfg.Transport {
	case "udp", "tcp":
	case "tls":
		if cfg.TLS == nil {
			errs = append(errs, errors.New("transport tls needs a TLS config"))
		}
	default:
		errs = append(errs, fmt.Errorf("transport %q is not one of udp, tcp, tls", cfg.Transport))
	}
	framing, err := ParseFraming(cfg.Framing)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = defaultMaxFrame
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = defaultMaxConnections
	}
	if cfg.Sockets == 0 {
		cfg.Sockets = 1
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = defaultQueueSize
	}
	if cfg.Workers == 0 {
		cfg.Workers = cfg.Sockets
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = defaultDrainTimeout
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = defaultHandshakeTimeout
	}
	if cfg.MaxFrame < 0 || cfg.MaxConnections < 0 || cfg.Sockets < 0 || cfg.QueueSize < 0 ||
		cfg.Workers < 0 || cfg.ReadBuffer < 0 || cfg.IdleTimeout < 0 || cfg.DrainTimeout < 0 || cfg.HandshakeTimeout < 0 {
		errs = append(errs, errors.New("sizes, counts and durations must not be negative"))
	}
	if cfg.Transport == "udp" && cfg.MaxFrame > maxDatagram {
		cfg.MaxFrame = maxDatagram
	}
	return cfg, framing, errors.Join(errs...)
}

// ParseFraming maps a configured framing name to a syslog.Framing: ""
// and "auto", "octet-counting" (RFC 6587 §3.4.1), "non-transparent"
// (RFC 6587 §3.4.2).
func ParseFraming(s string) (syslog.Framing, error) {
	switch s {
	case "", "auto":
		return syslog.FramingAuto, nil
	case "octet-counting":
		return syslog.FramingOctetCounting, nil
	case "non-transparent":
		return syslog.FramingNonTransparent, nil
	}
	return 0, fmt.Errorf("framing %q is not one of auto, octet-counting, non-transparent", s)
}
