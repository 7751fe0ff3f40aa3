package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vpipe/vpipe/sinks/ndjson"
)

// VeloCloudSource configures one VeloCloud Orchestrator event poller
// (pipeline/velocloud). Secrets come from a file or an environment
// variable, never from this file.
type VeloCloudSource struct {
	// Name identifies the source: metric label, log field, checkpoint
	// key. Required, unique among the VCO sources.
	Name string `yaml:"name"`
	// URL is the VCO's base URL, https://vco.example.com. Required.
	URL string `yaml:"url"`
	// Account is enterprise (default), partner (an MSP) or operator:
	// which login endpoint a password uses and how "every enterprise" is
	// listed.
	Account string `yaml:"account"`
	// TokenFile or TokenEnv holds an API token ("Authorization: Token").
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// Username with PasswordFile or PasswordEnv logs in for a session
	// cookie instead (renewed when it expires).
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// Enterprises to poll: ids or names as the VCO lists them. Empty:
	// every enterprise the account sees.
	Enterprises []string `yaml:"enterprises"`
	// Interval between polls of an enterprise (default 1m).
	Interval Duration `yaml:"interval"`
	// Lookback: how far back each poll reads again for late events
	// (default 15m).
	Lookback Duration `yaml:"lookback"`
	// Backfill: how far back the first poll reads (default 1h).
	Backfill Duration `yaml:"backfill"`
	// MaxWindow and MinWindow bound a request's time window (defaults 1h
	// and 1s).
	MaxWindow Duration `yaml:"max_window"`
	MinWindow Duration `yaml:"min_window"`
	// PageLimit is filter.limit (default 2048).
	PageLimit int `yaml:"page_limit"`
	// Concurrency bounds the requests in flight (default 2).
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds one request (default 30s).
	Timeout Duration `yaml:"timeout"`
	// MinBackoff and MaxBackoff bound retries (defaults 1s and 5m);
	// RateLimitBackoff is the pause after a 429 (default 5s).
	MinBackoff       Duration `yaml:"min_backoff"`
	MaxBackoff       Duration `yaml:"max_backoff"`
	RateLimitBackoff Duration `yaml:"rate_limit_backoff"`
	// MaxAttempts: malformed answers for a window before it is split and
	// finally skipped as a gap (default 5).
	MaxAttempts int `yaml:"max_attempts"`
	// RefreshEnterprises: how often the enterprises are listed again
	// (default 10m).
	RefreshEnterprises Duration  `yaml:"refresh_enterprises"`
	TLS                ClientTLS `yaml:"tls"`
}

// NDJSONStage configures the NDJSON-per-key file stage (sinks/ndjson).
type NDJSONStage struct {
	// Dir the files go under (required).
	Dir string `yaml:"dir"`
	// Path under dir, a template over event fields (default
	// "{organization.name|vmware.velocloud.enterprise_name}/events.json").
	Path string `yaml:"path"`
	// Format: original (default; the VCO JSON as the cron job wrote it)
	// or event (the normalised event).
	Format string `yaml:"format"`
	// Topics to consume, without the prefix (default [velocloud]).
	Topics    []string `yaml:"topics"`
	GroupID   string   `yaml:"group_id"`   // default "vpipe-ndjson"
	BatchSize int      `yaml:"batch_size"` // records per fsync, default 500
	// MaxBytes and MaxAge rotate a file (0: never); MaxFiles rotated
	// files are kept per path (0: all).
	MaxBytes int64    `yaml:"max_bytes"`
	MaxAge   Duration `yaml:"max_age"`
	MaxFiles int      `yaml:"max_files"`
	// DedupeWindow: event ids remembered per file (default 8192).
	DedupeWindow int `yaml:"dedupe_window"`
	// MaxOpenFiles bounds the open files (default 128).
	MaxOpenFiles int `yaml:"max_open_files"`
	// ReopenOnSIGHUP reopens every file on SIGHUP, for an external
	// logrotate (default true).
	ReopenOnSIGHUP *bool `yaml:"reopen_on_sighup"`
}

// fillVeloCloud sets the defaults of the VCO sources and the ndjson stage.
func (c *Config) fillVeloCloud() {
	def := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	for i := range c.Sources.VeloCloud {
		v := &c.Sources.VeloCloud[i]
		if v.Account == "" {
			v.Account = "enterprise"
		}
		def(&v.Interval, time.Minute)
		def(&v.Lookback, 15*time.Minute)
		def(&v.Backfill, time.Hour)
		def(&v.MaxWindow, time.Hour)
		def(&v.MinWindow, time.Second)
		def(&v.Timeout, 30*time.Second)
		def(&v.MinBackoff, time.Second)
		def(&v.MaxBackoff, 5*time.Minute)
		def(&v.RateLimitBackoff, 5*time.Second)
		def(&v.RefreshEnterprises, 10*time.Minute)
		if v.PageLimit == 0 {
			v.PageLimit = 2048
		}
		if v.Concurrency == 0 {
			v.Concurrency = 2
		}
		if v.MaxAttempts == 0 {
			v.MaxAttempts = 5
		}
	}
	if n := c.Stages.NDJSON; n != nil {
		if n.Path == "" {
			n.Path = ndjson.DefaultPath
		}
		if n.Format == "" {
			n.Format = ndjson.FormatOriginal
		}
		if len(n.Topics) == 0 {
			n.Topics = []string{"velocloud"}
		}
		if n.GroupID == "" {
			n.GroupID = "vpipe-ndjson"
		}
		if n.BatchSize == 0 {
			n.BatchSize = 500
		}
		if n.DedupeWindow == 0 {
			n.DedupeWindow = 8192
		}
		if n.MaxOpenFiles == 0 {
			n.MaxOpenFiles = 128
		}
		if n.ReopenOnSIGHUP == nil {
			on := true
			n.ReopenOnSIGHUP = &on
		}
	}
}

// validateVeloCloud adds the problems of the VCO sources and the ndjson
// stage.
func (c *Config) validateVeloCloud(p *Problems) {
	names := map[string]int{}
	for i := range c.Sources.VeloCloud {
		v := &c.Sources.VeloCloud[i]
		path := fmt.Sprintf("sources.velocloud[%d]", i)
		if v.Name == "" {
			p.add(path+".name", "missing")
		} else if j, dup := names[v.Name]; dup {
			p.add(path+".name", "%q is also the name of sources.velocloud[%d]", v.Name, j)
		} else if strings.ContainsAny(v.Name, "/ \t\n") {
			p.add(path+".name", "%q: no '/' or white space", v.Name)
		}
		names[v.Name] = i
		if u, err := url.Parse(v.URL); v.URL == "" {
			p.add(path+".url", "missing")
		} else if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.add(path+".url", "%q: want https://host", v.URL)
		}
		switch v.Account {
		case "enterprise", "partner", "operator":
		default:
			p.add(path+".account", "%q is not one of enterprise, partner, operator", v.Account)
		}
		token := v.TokenFile != "" || v.TokenEnv != ""
		password := v.PasswordFile != "" || v.PasswordEnv != ""
		switch {
		case v.TokenFile != "" && v.TokenEnv != "":
			p.add(path, "set token_file or token_env, not both")
		case v.PasswordFile != "" && v.PasswordEnv != "":
			p.add(path, "set password_file or password_env, not both")
		case token && (password || v.Username != ""):
			p.add(path, "set a token or a username and password, not both")
		case token:
		case password && v.Username == "":
			p.add(path+".username", "missing (a password needs it)")
		case v.Username != "" && !password:
			p.add(path, "username %q has no password_file or password_env", v.Username)
		case !password:
			p.add(path, "missing credentials: token_file, token_env, or username with password_file or password_env")
		}
		checkFile(p, path+".token_file", v.TokenFile)
		checkFile(p, path+".password_file", v.PasswordFile)
		v.TLS.check(p, path+".tls")
		for j, e := range v.Enterprises {
			if strings.TrimSpace(e) == "" {
				p.add(fmt.Sprintf("%s.enterprises[%d]", path, j), "empty")
			}
		}
		for _, d := range []struct {
			key string
			v   Duration
		}{
			{"interval", v.Interval}, {"lookback", v.Lookback}, {"max_window", v.MaxWindow},
			{"min_window", v.MinWindow}, {"timeout", v.Timeout}, {"min_backoff", v.MinBackoff},
			{"max_backoff", v.MaxBackoff}, {"rate_limit_backoff", v.RateLimitBackoff},
			{"refresh_enterprises", v.RefreshEnterprises},
		} {
			if d.v <= 0 {
				p.add(path+"."+d.key, "must be positive")
			}
		}
		if v.Backfill < 0 {
			p.add(path+".backfill", "must not be negative")
		}
		if v.MinWindow > v.MaxWindow {
			p.add(path+".min_window", "%s is above max_window %s", v.MinWindow.D(), v.MaxWindow.D())
		}
		if v.MaxBackoff < v.MinBackoff {
			p.add(path+".max_backoff", "%s is below min_backoff %s", v.MaxBackoff.D(), v.MinBackoff.D())
		}
		if v.PageLimit < 1 {
			p.add(path+".page_limit", "must be at least 1")
		}
		if v.Concurrency < 1 {
			p.add(path+".concurrency", "must be at least 1")
		}
		if v.MaxAttempts < 1 {
			p.add(path+".max_attempts", "must be at least 1")
		}
	}
	n := c.Stages.NDJSON
	if n == nil {
		return
	}
	if n.Dir == "" {
		p.add("stages.ndjson.dir", "missing")
	}
	if err := ndjson.CheckPath(n.Path); err != nil {
		p.add("stages.ndjson.path", "%v", err)
	}
	switch n.Format {
	case ndjson.FormatOriginal, ndjson.FormatEvent:
	default:
		p.add("stages.ndjson.format", "%q is not original or event", n.Format)
	}
	for i, t := range n.Topics {
		if t == "" || strings.ContainsAny(t, " /\\") {
			p.add(fmt.Sprintf("stages.ndjson.topics[%d]", i), "%q is not a topic name", t)
		}
	}
	if n.BatchSize < 1 {
		p.add("stages.ndjson.batch_size", "must be at least 1")
	}
	if n.MaxBytes < 0 {
		p.add("stages.ndjson.max_bytes", "must not be negative")
	}
	if n.MaxAge < 0 {
		p.add("stages.ndjson.max_age", "must not be negative")
	}
	if n.MaxFiles < 0 {
		p.add("stages.ndjson.max_files", "must not be negative")
	}
	if n.DedupeWindow < 1 {
		p.add("stages.ndjson.dedupe_window", "must be at least 1")
	}
	if n.MaxOpenFiles < 1 {
		p.add("stages.ndjson.max_open_files", "must be at least 1")
	}
}

// Secrets returns the source's token or password from its file or
// environment variable, trimmed (one of them is empty).
func (v VeloCloudSource) Secrets() (token, password string, err error) {
	at := "sources.velocloud " + v.Name + " "
	if token, err = Secret(at+"token", v.TokenFile, v.TokenEnv); err != nil {
		return "", "", err
	}
	password, err = Secret(at+"password", v.PasswordFile, v.PasswordEnv)
	return token, password, err
}
