package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vpipe/vpipe/pipeline/config"
)

func cmdTap(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tap", `vpipe tap [-c FILE] [--brokers LIST] [--from-beginning] TOPIC

Prints the records of TOPIC as they arrive, one a line (vpipe's events are
JSON objects, so the output pipes into jq), until interrupted. It reads every
partition without joining a consumer group, so it disturbs no stage.
TOPIC is a full topic name such as vpipe.other; a name without the
configured prefix (other, firewall, ...) gets it.

The brokers are --brokers, else kafka.brokers of the configuration, else the
embedded broker's address (kafka.embedded.listen, default 127.0.0.1:9092) of
a 'vpipe run' on this machine.`, stderr)
	path := fs.String("c", "", "configuration `file` (for the brokers and topic prefix)")
	fs.StringVar(path, "config", "", "same as -c")
	brokers := fs.String("brokers", "", "comma-separated bootstrap `brokers`, overriding the configuration")
	fromBeginning := fs.Bool("from-beginning", false, "start at the oldest record instead of the newest")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	cfg := config.Default()
	if *path != "" {
		var err error
		if cfg, err = config.Load(*path); err != nil {
			return err
		}
	}
	addrs := cfg.Kafka.Brokers
	if *brokers != "" {
		addrs = strings.Split(*brokers, ",")
	}
	if len(addrs) == 0 {
		addrs = []string{cfg.Kafka.Embedded.Listen}
	}
	topic := fs.Arg(0)
	if !strings.HasPrefix(topic, cfg.Kafka.TopicPrefix) && !strings.Contains(topic, ".") {
		topic = cfg.Kafka.TopicPrefix + topic
	}
	return tap(ctx, addrs, topic, *fromBeginning, stdout)
}

// tap copies every partition of topic to w, one record value a line.
func tap(ctx context.Context, brokers []string, topic string, fromBeginning bool, w io.Writer) error {
	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return fmt.Errorf("connect to %s: %w", brokers[0], err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return fmt.Errorf("topic %s: %w", topic, err)
	}
	start := kafka.LastOffset
	if fromBeginning {
		start = kafka.FirstOffset
	}
	out := bufio.NewWriter(w)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errc := make(chan error, len(parts))
	for _, p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: brokers, Topic: topic, Partition: p.ID,
			MaxWait: 200 * time.Millisecond, StartOffset: start,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				mu.Lock()
				out.Write(m.Value)
				out.WriteByte('\n')
				// Flush when nothing else is waiting, so a pipe sees
				// each record promptly.
				if r.Stats().Lag == 0 {
					out.Flush()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	out.Flush()
	close(errc)
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
