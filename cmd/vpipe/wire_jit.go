package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpipe/vpipe/parsers/ticket"
	"github.com/vpipe/vpipe/pipeline"
	"github.com/vpipe/vpipe/pipeline/checkpoint"
	"github.com/vpipe/vpipe/pipeline/config"
	"github.com/vpipe/vpipe/pipeline/stage"
	"github.com/vpipe/vpipe/pipeline/vcenter"
	"github.com/vpipe/vpipe/pipeline/znuny"
	"github.com/vpipe/vpipe/sinks/jitaccess"
	"github.com/vpipe/vpipe/sinks/nsx"
)

// roleJITAccess is the --stages name of the jit-access stage.
const roleJITAccess = "jit-access"

// startJIT builds the jit-access stage (role jit-access) when
// stages.jit_access is configured and the role chosen: the Znuny, vCenter
// and NSX clients, the grant store on the checkpoints topic, the consumer
// of the tickets topic, and the sink's reconcile and expiry loop. Neither
// Znuny, vCenter nor NSX is contacted here: a system that is away stalls
// the stage, not the start. Kafka must be reachable (the grant store is
// read at start).
func (p *proc) startJIT(roles map[string]bool, reg *prometheus.Registry, m *stage.Metrics) error {
	j := config.JITStage(p.cfg)
	if j == nil || !roles[roleJITAccess] {
		return nil
	}
	const at = "stages.jit_access"
	prefix := p.cfg.Kafka.TopicPrefix

	zpass, err := config.Secret(at+".znuny.password", j.Znuny.PasswordFile, j.Znuny.PasswordEnv)
	if err != nil {
		return err
	}
	ztls, err := clientTLS(at+".znuny", j.Znuny.TLS, p.log)
	if err != nil {
		return fmt.Errorf("%s.znuny: %w", at, err)
	}
	zc, err := znuny.New(znuny.Config{
		URL: j.Znuny.URL, Auth: j.Znuny.Auth, Username: j.Znuny.Username, Password: zpass,
		TLS: ztls, Timeout: j.Znuny.Timeout.D(),
	}, znuny.NewMetrics(reg), p.log)
	if err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}

	vpass, err := config.Secret(at+".vcenter.password", j.VCenter.PasswordFile, j.VCenter.PasswordEnv)
	if err != nil {
		return err
	}
	// jitaccess warns of insecure_skip_verify itself.
	if _, err := clientTLS(at+".vcenter", j.VCenter.TLS, nil); err != nil {
		return fmt.Errorf("%s.vcenter: %w", at, err)
	}
	vc := jitaccess.NewVCenterDialer(vcenter.ConnConfig{
		URL: j.VCenter.URL, Username: j.VCenter.Username, Password: vpass,
		CAFile: j.VCenter.TLS.CAFile, Insecure: j.VCenter.TLS.InsecureSkipVerify,
	}, p.log)
	p.closers = append(p.closers, closeWithin(vc.Logout))

	n := j.NSX
	npass, err := config.Secret(at+".nsx.password", n.PasswordFile, n.PasswordEnv)
	if err != nil {
		return err
	}
	token, err := config.Secret(at+".nsx.vmc.refresh_token", n.VMC.RefreshTokenFile, n.VMC.RefreshTokenEnv)
	if err != nil {
		return err
	}
	ntls, err := clientTLS(at+".nsx", n.TLS, p.log)
	if err != nil {
		return fmt.Errorf("%s.nsx: %w", at, err)
	}
	nc, err := nsx.New(nsx.Config{
		Name: roleJITAccess, URL: n.URL, API: n.API, EnforcementPoint: n.EnforcementPoint,
		Auth: n.Auth, Username: n.Username, Password: npass, TLS: ntls,
		VMC: nsx.VMC{RefreshToken: token, CSPURL: n.VMC.CSPURL, URL: n.VMC.URL, OrgID: n.VMC.OrgID, SDDCID: n.VMC.SDDCID},
	}, p.nsxMetrics(reg), p.log)
	if err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	p.closers = append(p.closers, closeWithin(nc.Close))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := checkpoint.Open(ctx, p.brokers, prefix+pipeline.TopicCheckpoints)
	if err != nil {
		return fmt.Errorf("%s: grant store: %w", at, err)
	}
	p.closers = append(p.closers, store)

	sink, err := jitaccess.New(jitaccess.Config{
		Field: j.Field, Tag: nsx.Tag{Scope: j.Tag.Scope, Tag: j.Tag.Tag},
		MaxDuration: j.MaxDuration.D(), ReconcileInterval: j.ReconcileInterval.D(),
		Queues: j.Queues, SearchLimit: j.SearchLimit,
		NSXManager: nsxManagerHost(n.URL),
	}, jitaccess.Deps{
		Tickets: zc, VMs: vc, NSX: nc, Store: store, Audit: p.producer,
		Metrics: jitaccess.NewMetrics(reg), Log: p.log,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	r, err := stage.New(stage.Config{
		Name: roleJITAccess, Brokers: p.brokers, Topics: []string{prefix + pipeline.TopicTickets},
		GroupID: j.GroupID, DLQTopic: prefix + pipeline.TopicDLQ,
	}, sink, m, p.log)
	if err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	p.stages = append(p.stages, r, sink)
	return nil
}

// wrapTicketWebhook returns the ingest handler h wrapped for the ticket
// webhook (POST /v1/webhooks/ticket; other routes pass unchanged): HTTP
// Basic credentials whose password is the bearer token count as the token
// (ticket.BasicAuthAsBearer: Znuny's invoker can send nothing else), and,
// when stages.jit_access.webhook has an HMAC secret, the request must carry
// a valid signature (ticket.RequireSignature).
func (p *proc) wrapTicketWebhook(h http.Handler) (http.Handler, error) {
	h = ticket.BasicAuthAsBearer(h, "")
	j := config.JITStage(p.cfg)
	if j == nil {
		return h, nil
	}
	const at = "stages.jit_access.webhook.hmac_secret"
	secret, err := config.Secret(at, j.Webhook.HMACSecretFile, j.Webhook.HMACSecretEnv)
	if err != nil || secret == "" {
		return h, err
	}
	return ticket.RequireSignature(h, ticket.Signature{
		Secret: []byte(secret), Header: j.Webhook.SignatureHeader, MaxBodyBytes: p.cfg.HTTP.MaxBodyBytes,
	})
}

// nsxMetrics returns the process's one *nsx.Metrics. nsx.NewMetrics
// registers its collectors, so every stage of a process that talks to NSX
// (tag-sync, jit-access, forensics) shares it: call this rather than
// nsx.NewMetrics.
func (p *proc) nsxMetrics(reg *prometheus.Registry) *nsx.Metrics {
	if p.nsxM == nil {
		p.nsxM = nsx.NewMetrics(reg)
	}
	return p.nsxM
}

// closeWithin adapts a Close(ctx) to io.Closer, with a 5s deadline.
type closeWithin func(context.Context) error

func (f closeWithin) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f(ctx)
}
