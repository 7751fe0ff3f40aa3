// Package vspansim adds to govmomi's vCenter simulator (vcsim) the one
// part of the distributed-switch API that it lacks and the forensics
// stage needs: Distributed Port Mirroring (VSPAN) sessions.
//
// vcsim's DistributedVirtualSwitch.ReconfigureDvs_Task handles host
// membership only: it ignores VMwareDVSConfigSpec.vspanConfigSpec, never
// stores config.vspanSession, and never changes config.configVersion
// (govmomi v0.56.0 simulator/dvs.go; shared/reference/apis.md §3.4). This
// package hooks ReconfigureDvs_Task calls whose spec carries
// vspanConfigSpec (through simulator.Registry.Handler) and models them
// after the vSphere Web Services API (VMwareDVSConfigSpec,
// VMwareDVSVspanConfigSpec, VMwareVspanSession):
//
//   - configVersion in the spec must equal the switch's, else
//     ConcurrentAccess; every successful reconfigure bumps it;
//   - "add" stores the session under a generated key (a key given by the
//     caller is ignored) with sessionType mixedDestMirror when unset,
//     "edit" replaces the session with the given key (keeping its type when
//     none is given), "remove" deletes it;
//     an unknown key is NotFound;
//   - a sessionType outside VMwareDVSVspanSessionType is InvalidArgument.
//
// The change is applied, under the switch's lock, when the call arrives;
// vcsim's own ReconfigureDvs_Task then runs as usual (a task that posts a
// DvsReconfiguredEvent), so the client waits on a task as with vCenter. A
// refused spec fails the call itself with the fault, where vCenter may
// instead fail the task: a client must handle both (govmomi's fault.Is
// does). A spec that also changes hosts is refused (NotSupported) rather
// than half-applied. Port-level checks of a real vCenter
// (VspanPortConflict, VspanDestPortConflict, promiscuous ports) and the
// binding of vNICs to ports are not modelled.
package vspansim

import (
	"slices"
	"strconv"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Install makes r's distributed switches handle VSPAN sessions. Call it
// after the model is created and before clients connect; it chains to a
// Registry.Handler already set.
func Install(r *simulator.Registry) {
	prev := r.Handler
	r.Handler = func(ctx *simulator.Context, m *simulator.Method) (mo.Reference, types.BaseMethodFault) {
		if m.Name == "ReconfigureDvs_Task" {
			if req, ok := m.Body.(*types.ReconfigureDvs_Task); ok {
				if spec, ok := req.Spec.(*types.VMwareDVSConfigSpec); ok && len(spec.VspanConfigSpec) > 0 {
					if dvs, ok := ctx.Map.Get(m.This).(*simulator.DistributedVirtualSwitch); ok {
						var f types.BaseMethodFault
						ctx.WithLock(dvs, func() { f = reconfigure(ctx, dvs, spec) })
						if f != nil {
							return nil, f
						}
					}
				}
			}
		}
		if prev != nil {
			return prev(ctx, m)
		}
		return nil, nil
	}
}

// reconfigure applies spec's VSPAN operations to dvs, all or none.
func reconfigure(ctx *simulator.Context, dvs *simulator.DistributedVirtualSwitch, spec *types.VMwareDVSConfigSpec) types.BaseMethodFault {
	if len(spec.Host) > 0 {
		return &types.NotSupported{}
	}
	cfg, ok := dvs.Config.(*types.VMwareDVSConfigInfo)
	if !ok {
		return &types.NotSupported{}
	}
	if spec.ConfigVersion != cfg.ConfigVersion {
		return &types.ConcurrentAccess{}
	}
	sessions := slices.Clone(cfg.VspanSession)
	for _, op := range spec.VspanConfigSpec {
		sess := op.VspanSession
		if sess.SessionType != "" && !slices.Contains(types.VMwareDVSVspanSessionType("").Strings(), sess.SessionType) {
			return &types.InvalidArgument{InvalidProperty: "vspanSession.sessionType"}
		}
		i := slices.IndexFunc(sessions, func(v types.VMwareVspanSession) bool { return v.Key != "" && v.Key == sess.Key })
		switch types.ConfigSpecOperation(op.Operation) {
		case types.ConfigSpecOperationAdd:
			sess.Key = strconv.Itoa(nextKey(sessions))
			if sess.SessionType == "" {
				sess.SessionType = string(types.VMwareDVSVspanSessionTypeMixedDestMirror)
			}
			sessions = append(sessions, sess)
		case types.ConfigSpecOperationEdit:
			if i < 0 {
				return &types.NotFound{}
			}
			if sess.SessionType == "" {
				sess.SessionType = sessions[i].SessionType
			}
			sessions[i] = sess
		case types.ConfigSpecOperationRemove:
			if i < 0 {
				return &types.NotFound{}
			}
			sessions = slices.Delete(sessions, i, i+1)
		default:
			return &types.InvalidArgument{InvalidProperty: "vspanConfigSpec.operation"}
		}
	}
	next := *cfg
	next.VspanSession = sessions
	next.ConfigVersion = strconv.Itoa(atoi(cfg.ConfigVersion) + 1)
	ctx.Update(dvs, []types.PropertyChange{{Name: "config", Val: &next}})
	return nil
}

// nextKey returns a session key not in use: one more than the largest
// numeric key.
func nextKey(sessions []types.VMwareVspanSession) int {
	n := 0
	for _, s := range sessions {
		n = max(n, atoi(s.Key))
	}
	return n + 1
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
