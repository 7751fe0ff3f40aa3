// Package broker runs the embedded Kafka-protocol broker that vpipe uses
// when no brokers are configured: github.com/twmb/franz-go/pkg/kfake, one
// node on a loopback address, keeping its log and consumer-group offsets on
// disk under a data directory so a restart loses nothing.
package broker

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config configures the embedded broker.
type Config struct {
	// Listen is the host:port to listen on; port 0 picks a free one.
	Listen string
	// DataDir keeps topics and committed group offsets across restarts
	// (kfake.DataDir). Empty keeps everything in memory.
	DataDir string
	// SyncWrites fsyncs every produced batch before acknowledging it
	// (kfake.SyncWrites). Without it a crash of the machine (not of the
	// process) can lose the last batches, as with Kafka's defaults.
	SyncWrites bool
	// Partitions is the partition count of the topics it creates; 0 means 4.
	Partitions int
	// Topics are created at first start; others are created on first use.
	Topics []string
	// Blackhole acknowledges produced records without storing them
	// (kfake.BlackholeProduce), so a benchmark can measure vpipe without
	// the broker's storage cost. Nothing can be consumed from it.
	Blackhole bool
}

// Embedded is a running embedded broker.
type Embedded struct {
	cluster *kfake.Cluster
	addr    string
}

// Start starts the broker. The caller must Close it.
func Start(cfg Config) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded broker listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker listen address %q: bad port", cfg.Listen)
	}
	parts := cfg.Partitions
	if parts <= 0 {
		parts = 4
	}
	opts := []kfake.Opt{
		kfake.Ports(port),
		// kfake always asks for 127.0.0.1; listen where configured instead.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, portStr))
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(parts),
		kfake.ClusterID("vpipe-embedded"),
		// kafka-go's consumer groups default to a 30 s session; kfake's
		// default minimum of 6 s is fine, but allow quick test sessions.
		kfake.GroupMinSessionTimeout(time.Second),
	}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(parts), cfg.Topics...))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.Blackhole {
		opts = append(opts, kfake.BlackholeProduce())
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		return nil, fmt.Errorf("start embedded broker: no listener")
	}
	return &Embedded{cluster: c, addr: addrs[0]}, nil
}

// Addr is the broker's host:port, for Kafka clients' bootstrap list.
func (e *Embedded) Addr() string { return e.addr }

// Close stops the broker and, with a data directory, writes its state to
// disk. It is safe to call more than once.
func (e *Embedded) Close() { e.cluster.Close() }
