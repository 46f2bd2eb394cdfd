package telemetry

import (
	"context"
	"fmt"
	"testing"
)

// TestQuotaPeriodAndUse: a quota policy's snapshot carries its current
// period and the use of it — counts and each key's limit − remaining — and
// both start again when the period turns over; the keys kept are bounded.
func TestQuotaPeriodAndUse(t *testing.T) {
	const day = 86_400_000
	c := &clock{ms: 10*day + 3_600_000}
	period := func(at int64) (int64, int64) { s := at - ((at%day)+day)%day; return s, s + day }
	h := newTestHub(c, PolicyInfo{Name: "daily", Kind: "limiter", Strategy: "quota", Limit: 3, Quota: &QuotaInfo{Zone: "UTC+00:00", Period: period}},
		PolicyInfo{Name: "api", Kind: "limiter", Strategy: "gcra", Limit: 10})
	rec := func(o Outcome, key string, remaining int64) {
		h.Record(context.Background(), Event{Policy: "daily", Key: key, Outcome: o, Limit: 3, Remaining: remaining, At: c.ms})
	}
	rec(Allowed, "alice", 2)
	rec(Allowed, "alice", 1)
	rec(Allowed, "bob", 2)
	rec(Allowed, "alice", 0)
	rec(Denied, "alice", 0)
	h.Drain()
	s := h.Snapshot()
	if policy(t, s, "api").Quota != nil {
		t.Fatal("a gcra policy has a quota period")
	}
	q := policy(t, s, "daily").Quota
	if q == nil || q.Start != 10*day || q.End != 11*day || q.Zone != "UTC+00:00" || q.Allowed != 4 || q.Denied != 1 {
		t.Fatalf("quota %+v", q)
	}
	if len(q.TopUsed) != 2 || q.TopUsed[0] != (QuotaUse{"alice", 3, 3}) || q.TopUsed[1] != (QuotaUse{"bob", 1, 3}) {
		t.Fatalf("use %+v", q.TopUsed)
	}

	c.ms += day // the next period: nothing decided in it yet
	h.Record(context.Background(), Event{Policy: "api", Key: "x", Outcome: Allowed, Limit: 10, At: c.ms})
	h.Drain()
	q = policy(t, h.Snapshot(), "daily").Quota
	if q.Start != 11*day || q.Allowed != 0 || len(q.TopUsed) != 0 {
		t.Fatalf("after the turn %+v", q)
	}
	rec(Allowed, "carol", 2)
	for i := range 10 * topK {
		rec(Allowed, fmt.Sprint("k", i), int64(i%3))
	}
	h.Drain()
	q = policy(t, h.Snapshot(), "daily").Quota
	if q.Allowed != 1+10*topK || len(q.TopUsed) != topN || q.TopUsed[0].Used != 3 {
		t.Fatalf("in the new period %+v", q)
	}
	h.mu.Lock()
	kept := len(h.policies["daily"].quota.used)
	h.mu.Unlock()
	if kept > 4*topK {
		t.Fatalf("%d keys kept, bound %d", kept, 4*topK)
	}
}
