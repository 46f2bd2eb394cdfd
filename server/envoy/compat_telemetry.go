package envoy

import (
	"context"
	"time"

	"github.com/throttlekit/throttlekit-go/server/envoycompat"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// CompatPolicy is the name the telemetry gives a limit of
// envoyproxy/ratelimit's files: "envoy:" and its FullKey (one name per
// domain for the limits requests carry, whose keys are the clients').
func CompatPolicy(domain string, l *envoycompat.Limit) string {
	if l.Override {
		return "envoy:" + domain + ":override"
	}
	return "envoy:" + l.FullKey
}

// CompatInfos are the telemetry's policies for the limits of ec's files
// and each domain's overrides.
func CompatInfos(ec *envoycompat.Config) []telemetry.PolicyInfo {
	if ec == nil {
		return nil
	}
	var out []telemetry.PolicyInfo
	for _, l := range ec.Limits() {
		detail := "envoyproxy/ratelimit " + l.File + ", " + l.Unit.String() + " window"
		if l.QuotaMode {
			detail += ", quota mode"
		}
		out = append(out, telemetry.PolicyInfo{Name: "envoy:" + l.FullKey, Kind: "limiter", Strategy: "fixedWindow",
			Limit: int64(l.RequestsPerUnit), Detail: detail, Shadow: l.ShadowMode})
	}
	for _, d := range ec.Domains() {
		out = append(out, telemetry.PolicyInfo{Name: "envoy:" + d + ":override", Kind: "limiter", Strategy: "fixedWindow",
			Detail: "limits carried by Envoy's requests (limit override) in domain " + d})
	}
	return out
}

// TapObserver records the decisions made on envoyproxy/ratelimit's
// counters as the server's decisions: Prometheus, the Monitor, Lens,
// OpenTelemetry. (A descriptor naming one of our policies is recorded by
// that policy's decision.)
func TapObserver(tap telemetry.Tap, fail telemetry.Outcome) envoycompat.Observer {
	return tapObserver{tap: tap, fail: fail}
}

type tapObserver struct {
	tap  telemetry.Tap
	fail telemetry.Outcome // FailOpen or FailClosed
}

func (t tapObserver) Observe(ctx context.Context, domain string, outs []envoycompat.Outcome, elapsed time.Duration) {
	at := time.Now().UnixMilli()
	for i := range outs {
		o := &outs[i]
		if o.Policy != nil {
			continue
		}
		outcome := telemetry.Allowed
		switch {
		case o.Failed:
			outcome = t.fail
		case o.Refused:
			outcome = telemetry.Denied
		case o.Over && o.Limit.ShadowMode:
			outcome = telemetry.ShadowDenied
		}
		ev := telemetry.Event{Policy: CompatPolicy(domain, o.Limit), Key: o.Key, Op: "ShouldRateLimit", Outcome: outcome,
			Limit: int64(o.Limit.RequestsPerUnit), Remaining: int64(o.Remaining), Cost: int64(min(o.Hits, 1<<62)), Latency: elapsed, At: at}
		if outcome == telemetry.Denied {
			ev.Axis = "rate"
		}
		t.tap.Record(ctx, ev)
	}
}
