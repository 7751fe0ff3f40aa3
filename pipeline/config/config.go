// Package config loads and validates vpipe's YAML configuration: defaults
// first, then strict decoding (an unknown key is an error), then Validate
// on every part, reporting every problem at once with its key path.
// deploy/vpipe.example.yaml documents every key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration.
type Config struct {
	Log     Log        `yaml:"log"`
	Kafka   Kafka      `yaml:"kafka"`
	Syslog  []Listener `yaml:"syslog"`
	HTTP    HTTP       `yaml:"http"`
	Metrics Metrics    `yaml:"metrics"`
	Parse   Parse      `yaml:"parse"`
	// Sources are the pollers: vCenter event history, VeloCloud
	// Orchestrator events.
	Sources Sources `yaml:"sources"`
	// Tenants is the tenant registry (tenants.go).
	Tenants *Tenants `yaml:"tenants"`
	Stages  Stages   `yaml:"stages"`

	file string // the file Load read
}

// File is the file the configuration was loaded from (Load), "" when it
// was decoded from elsewhere or is the default. What reloads at run time
// (tenants.list) reads it again.
func (c *Config) File() string { return c.file }

// Sources configures the pollers.
type Sources struct {
	VCenter   []VCenterSource   `yaml:"vcenter"`    // sources_vcenter.go
	VeloCloud []VeloCloudSource `yaml:"velocloud"`  // sources_velocloud.go
	NSXGroups []NSXGroupsSource `yaml:"nsx_groups"` // forensics.go
}

// Stages configures the consumer stages; a stage runs when it is
// configured here (and --stages does not leave it out).
type Stages struct {
	File          *FileStage          `yaml:"file"`
	TenantForward *TenantForwardStage `yaml:"tenant_forward"` // tenants.go
	TagSync       *TagSyncStage       `yaml:"tag_sync"`       // sources_vcenter.go
	NDJSON        *NDJSONStage        `yaml:"ndjson"`         // sources_velocloud.go
	JITAccess     *JITAccessStage     `yaml:"jit_access"`     // jit.go
	Forensics     *ForensicsStage     `yaml:"forensics"`      // forensics.go
}

// FileStage appends the events of some topics to one NDJSON file, fsynced
// per batch: an archive, a debugging tap that keeps its place, and the
// simplest example of a stage.
type FileStage struct {
	Path string `yaml:"path"` // the file; created if missing
	// Topics to consume, without the prefix (default [firewall, vcenter,
	// velocloud, tickets, nsx, other]).
	Topics    []string `yaml:"topics"`
	GroupID   string   `yaml:"group_id"`   // default "vpipe-file"
	BatchSize int      `yaml:"batch_size"` // records per fsync, default 500
}

// Log configures logging.
type Log struct {
	Level string `yaml:"level"` // debug, info (default), warn, error
}

// Kafka configures the brokers and the producer.
type Kafka struct {
	// Brokers is the bootstrap list of a Kafka cluster. Empty: run the
	// embedded broker.
	Brokers     []string `yaml:"brokers"`
	Embedded    Embedded `yaml:"embedded"`
	TopicPrefix string   `yaml:"topic_prefix"` // default "vpipe."
	Compression string   `yaml:"compression"`  // none, gzip, snappy, lz4 (default), zstd
	// BatchSize is the most records per partition batch (default 4096).
	BatchSize int `yaml:"batch_size"`
	// Linger is how long a batch waits to fill (default 2ms).
	Linger Duration `yaml:"linger"`
	// MaxBuffered bounds records accepted and not yet acknowledged
	// (default 65536); when full, ingest waits.
	MaxBuffered int `yaml:"max_buffered"`
	// ShutdownTimeout bounds the flush on shutdown (default 30s).
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Embedded configures the embedded broker.
type Embedded struct {
	Listen     string `yaml:"listen"`      // default 127.0.0.1:9092
	DataDir    string `yaml:"data_dir"`    // default ./vpipe-data
	SyncWrites bool   `yaml:"sync_writes"` // fsync every batch
	Partitions int    `yaml:"partitions"`  // per topic, default 4
}

// Listener configures one syslog listener.
type Listener struct {
	Name      string `yaml:"name"`      // default "<transport>:<address>"
	Transport string `yaml:"transport"` // udp, tcp, tls
	Address   string `yaml:"address"`
	// Framing is for tcp and tls: auto (default), octet-counting,
	// non-transparent.
	Framing        string   `yaml:"framing"`
	MaxFrameBytes  int      `yaml:"max_frame_bytes"` // default 65536
	IdleTimeout    Duration `yaml:"idle_timeout"`    // default 5m; tcp and tls
	MaxConnections int      `yaml:"max_connections"` // default 1024; tcp and tls
	ReadBuffer     int      `yaml:"read_buffer"`     // SO_RCVBUF bytes; udp, default 4 MiB
	Sockets        int      `yaml:"sockets"`         // SO_REUSEPORT sockets; udp, default 1
	QueueSize      int      `yaml:"queue_size"`      // udp queue, default 16384 datagrams
	TLS            TLS      `yaml:"tls"`
}

// TLS configures a TLS listener (RFC 5425).
type TLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"` // set: require client certificates (mTLS)
	MinVersion   string `yaml:"min_version"`    // "1.2" (default) or "1.3"
}

// HTTP configures the HTTP server (ingest, /metrics, /healthz, /readyz).
type HTTP struct {
	// Address to listen on (default 127.0.0.1:8080); "off" disables it.
	Address string `yaml:"address"`
	// BearerTokenFile holds the token clients must send; BearerTokenEnv
	// names an environment variable holding it. Neither: no auth.
	BearerTokenFile string `yaml:"bearer_token_file"`
	BearerTokenEnv  string `yaml:"bearer_token_env"`
	MaxBodyBytes    int64  `yaml:"max_body_bytes"` // default 10 MiB
}

// Metrics configures where /metrics is served.
type Metrics struct {
	// Address of a separate listener for /metrics; empty serves it on the
	// HTTP server.
	Address string `yaml:"address"`
}

// Parse configures the parsers.
type Parse struct {
	// Timezone for RFC 3164 timestamps, which carry none (IANA name,
	// default UTC).
	Timezone string `yaml:"timezone"`
}

// Duration is a time.Duration written as a string ("10s", "5m").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration string such as \"10s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Default returns the configuration `vpipe run` uses without a file: the
// embedded broker, syslog on UDP and TCP 127.0.0.1:5514, HTTP on
// 127.0.0.1:8080.
func Default() *Config {
	c := &Config{
		Syslog: []Listener{
			{Transport: "udp", Address: "127.0.0.1:5514"},
			{Transport: "tcp", Address: "127.0.0.1:5514"},
		},
	}
	c.fill()
	return c
}

// fill sets every zero field to its default.
func (c *Config) fill() {
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	k := &c.Kafka
	if k.Embedded.Listen == "" {
		k.Embedded.Listen = "127.0.0.1:9092"
	}
	if k.Embedded.DataDir == "" {
		k.Embedded.DataDir = "./vpipe-data"
	}
	if k.Embedded.Partitions == 0 {
		k.Embedded.Partitions = 4
	}
	if k.TopicPrefix == "" {
		k.TopicPrefix = "vpipe."
	}
	if k.Compression == "" {
		k.Compression = "lz4"
	}
	if k.BatchSize == 0 {
		k.BatchSize = 4096
	}
	if k.Linger == 0 {
		k.Linger = Duration(2 * time.Millisecond)
	}
	if k.MaxBuffered == 0 {
		k.MaxBuffered = 65536
	}
	if k.ShutdownTimeout == 0 {
		k.ShutdownTimeout = Duration(30 * time.Second)
	}
	for i := range c.Syslog {
		l := &c.Syslog[i]
		if l.Name == "" {
			l.Name = l.Transport + ":" + l.Address
		}
		if l.Framing == "" {
			l.Framing = "auto"
		}
		if l.MaxFrameBytes == 0 {
			l.MaxFrameBytes = 64 << 10
		}
		if l.IdleTimeout == 0 {
			l.IdleTimeout = Duration(5 * time.Minute)
		}
		if l.MaxConnections == 0 {
			l.MaxConnections = 1024
		}
		if l.ReadBuffer == 0 {
			l.ReadBuffer = 4 << 20
		}
		if l.Sockets == 0 {
			l.Sockets = 1
		}
		if l.QueueSize == 0 {
			l.QueueSize = 16384
		}
		if l.TLS.MinVersion == "" {
			l.TLS.MinVersion = "1.2"
		}
	}
	if c.HTTP.Address == "" {
		c.HTTP.Address = "127.0.0.1:8080"
	}
	if c.HTTP.MaxBodyBytes == 0 {
		c.HTTP.MaxBodyBytes = 10 << 20
	}
	if c.Parse.Timezone == "" {
		c.Parse.Timezone = "UTC"
	}
	c.fillTenants()
	c.fillVCenter()
	c.fillVeloCloud()
	c.fillJIT()
	c.fillForensics()
	if f := c.Stages.File; f != nil {
		if len(f.Topics) == 0 {
			f.Topics = []string{"firewall", "vcenter", "velocloud", "tickets", "nsx", "other"}
		}
		if f.GroupID == "" {
			f.GroupID = "vpipe-file"
		}
		if f.BatchSize == 0 {
			f.BatchSize = 500
		}
	}
}

// Load reads, decodes and validates the file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := Decode(f)
	if err != nil {
		return nil, err
	}
	c.file = path
	return c, nil
}

// Decode decodes a configuration strictly (unknown keys are errors), fills
// defaults and validates it. The error lists every problem, one a line.
func Decode(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(err)
	}
	c.fill()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// yamlError rewrites yaml.v3's multi-line type errors as one problem a
// line.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return &Problems{List: te.Errors}
	}
	return err
}

// Problems is every validation problem of a configuration.
type Problems struct{ List []string }

func (p *Problems) Error() string { return strings.Join(p.List, "\n") }

func (p *Problems) add(path, format string, args ...any) {
	p.List = append(p.List, path+": "+fmt.Sprintf(format, args...))
}

// Validate checks every part of c and reports all problems at once.
func (c *Config) Validate() error {
	p := &Problems{}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	k := &c.Kafka
	for i, b := range k.Brokers {
		checkHostPort(p, fmt.Sprintf("kafka.brokers[%d]", i), b)
	}
	if len(k.Brokers) == 0 {
		checkHostPort(p, "kafka.embedded.listen", k.Embedded.Listen)
		if k.Embedded.Partitions < 1 {
			p.add("kafka.embedded.partitions", "must be at least 1")
		}
	}
	switch k.Compression {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		p.add("kafka.compression", "%q is not one of none, gzip, snappy, lz4, zstd", k.Compression)
	}
	if strings.ContainsAny(k.TopicPrefix, " /\\") {
		p.add("kafka.topic_prefix", "%q: topic names may hold letters, digits, '.', '_' and '-'", k.TopicPrefix)
	}
	if k.BatchSize < 1 {
		p.add("kafka.batch_size", "must be at least 1")
	}
	if k.MaxBuffered < 1 {
		p.add("kafka.max_buffered", "must be at least 1")
	}
	if k.Linger < 0 || k.ShutdownTimeout < 0 {
		p.add("kafka", "durations must not be negative")
	}
	names := map[string]int{}
	for i := range c.Syslog {
		l := &c.Syslog[i]
		path := fmt.Sprintf("syslog[%d]", i)
		if j, dup := names[l.Name]; dup {
			p.add(path+".name", "%q is also the name of syslog[%d]", l.Name, j)
		}
		names[l.Name] = i
		switch l.Transport {
		case "udp", "tcp", "tls":
		case "":
			p.add(path+".transport", "missing (udp, tcp or tls)")
		default:
			p.add(path+".transport", "%q is not one of udp, tcp, tls", l.Transport)
		}
		checkHostPort(p, path+".address", l.Address)
		switch l.Framing {
		case "auto", "octet-counting", "non-transparent":
		default:
			p.add(path+".framing", "%q is not one of auto, octet-counting, non-transparent", l.Framing)
		}
		if l.MaxFrameBytes < 480 || l.MaxFrameBytes > 1<<20 {
			// RFC 5424 §6.1: receivers must accept at least 480 octets.
			p.add(path+".max_frame_bytes", "%d is outside 480..1048576", l.MaxFrameBytes)
		}
		if l.MaxConnections < 1 {
			p.add(path+".max_connections", "must be at least 1")
		}
		if l.Sockets < 1 || l.Sockets > 64 {
			p.add(path+".sockets", "%d is outside 1..64", l.Sockets)
		}
		if l.QueueSize < 1 {
			p.add(path+".queue_size", "must be at least 1")
		}
		if l.IdleTimeout < 0 {
			p.add(path+".idle_timeout", "must not be negative")
		}
		t := l.TLS
		if l.Transport == "tls" {
			if t.CertFile == "" {
				p.add(path+".tls.cert_file", "missing: a tls listener needs a certificate")
			}
			if t.KeyFile == "" {
				p.add(path+".tls.key_file", "missing: a tls listener needs a key")
			}
			checkFile(p, path+".tls.cert_file", t.CertFile)
			checkFile(p, path+".tls.key_file", t.KeyFile)
			checkFile(p, path+".tls.client_ca_file", t.ClientCAFile)
			if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
				p.add(path+".tls.min_version", "%q is not 1.2 or 1.3", t.MinVersion)
			}
		} else if t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != "" {
			p.add(path+".tls", "set on a %s listener; use transport: tls", l.Transport)
		}
	}
	if c.HTTP.Address != "off" {
		checkHostPort(p, "http.address", c.HTTP.Address)
	}
	checkFile(p, "http.bearer_token_file", c.HTTP.BearerTokenFile)
	if c.HTTP.BearerTokenFile != "" && c.HTTP.BearerTokenEnv != "" {
		p.add("http", "set bearer_token_file or bearer_token_env, not both")
	}
	if c.HTTP.MaxBodyBytes < 1 {
		p.add("http.max_body_bytes", "must be at least 1")
	}
	if c.Metrics.Address != "" {
		checkHostPort(p, "metrics.address", c.Metrics.Address)
	} else if c.HTTP.Address == "off" {
		p.add("metrics.address", "missing while http.address is off: /metrics needs a listener")
	}
	if _, err := time.LoadLocation(c.Parse.Timezone); err != nil {
		p.add("parse.timezone", "%v", err)
	}
	if f := c.Stages.File; f != nil {
		if f.Path == "" {
			p.add("stages.file.path", "missing")
		}
		for i, t := range f.Topics {
			if t == "" || strings.ContainsAny(t, " /\\") {
				p.add(fmt.Sprintf("stages.file.topics[%d]", i), "%q is not a topic name", t)
			}
		}
		if f.BatchSize < 1 {
			p.add("stages.file.batch_size", "must be at least 1")
		}
	}
	c.validateTenants(p)
	c.validateVCenter(p)
	c.validateVeloCloud(p)
	c.validateJIT(p)
	c.validateForensics(p)
	if len(p.List) > 0 {
		return p
	}
	return nil
}

// checkHostPort adds a problem unless s is host:port with a numeric port.
func checkHostPort(p *Problems, path, s string) {
	if s == "" {
		p.add(path, "missing")
		return
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		p.add(path, "%q: want host:port", s)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(path, "%q: bad port", s)
	}
}

// checkFile adds a problem when name is set but cannot be read.
func checkFile(p *Problems, path, name string) {
	if name == "" {
		return
	}
	f, err := os.Open(name)
	if err != nil {
		p.add(path, "%v", err)
		return
	}
	f.Close()
}

// Secret returns the bearer token from its file or environment variable,
// trimmed; empty when none is configured.
func (h HTTP) Secret() (string, error) {
	return Secret("http.bearer_token", h.BearerTokenFile, h.BearerTokenEnv)
}
