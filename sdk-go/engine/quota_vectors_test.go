package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// quotaFile is conformance/testdata/quota-vectors.json: quota suites in the
// golden-vector shape, computed by scripts/gen-quota-vectors.py from
// Python's calendar and zoneinfo, independently of this engine.
type quotaFile struct {
	Suites []struct {
		Name     string `json:"name"`
		Strategy struct {
			Kind    string         `json:"kind"`
			Options map[string]any `json:"options"`
		} `json:"strategy"`
		Ops []struct {
			Now    int64 `json:"now"`
			Cost   int64 `json:"cost"`
			Expect struct {
				Allowed      bool  `json:"allowed"`
				Limit        int64 `json:"limit"`
				Remaining    int64 `json:"remaining"`
				ResetAt      int64 `json:"resetAt"`
				RetryAfterMs int64 `json:"retryAfterMs"`
			} `json:"expect"`
		} `json:"ops"`
	} `json:"suites"`
}

// quotaOptions reads a suite's options as the vector file spells them.
func quotaOptions(o map[string]any) (QuotaOptions, error) {
	var q QuotaOptions
	num := func(k string) (int64, bool) {
		v, ok := o[k].(float64)
		return int64(v), ok
	}
	q.Limit, _ = num("limit")
	cadence, _ := o["resetCadence"].(string)
	q.Cadence = Cadence(cadence)
	q.OffsetMinutes, _ = num("offsetMinutes")
	q.WeekStartsOn, q.WeekStartsOnSet = num("weekStartsOn")
	if p, ok := o["periodMs"].(float64); ok {
		q.PeriodMs = p
	}
	q.Anchor, _ = num("anchor")
	q.Buckets, _ = num("buckets")
	if z, ok := o["timeZone"].(string); ok {
		loc, err := time.LoadLocation(z)
		if err != nil {
			return q, err
		}
		q.Location = loc
	}
	return q, nil
}

// TestQuotaVectors replays the independently computed quota suites: every
// decision, field for field, across the boundaries of four periods each.
func TestQuotaVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "conformance", "testdata", "quota-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f quotaFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	ops := 0
	for _, s := range f.Suites {
		o, err := quotaOptions(s.Strategy.Options)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		q, err := NewQuota(o)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		var st State
		for i, op := range s.Ops {
			d, _ := q.Check(&st, op.Now, op.Cost)
			want := Decision{Allowed: op.Expect.Allowed, Limit: op.Expect.Limit, Remaining: op.Expect.Remaining,
				ResetAt: op.Expect.ResetAt, RetryAfterMs: op.Expect.RetryAfterMs}
			if d != want {
				t.Errorf("%s op %d at %s: %+v, want %+v", s.Name, i, time.UnixMilli(op.Now).UTC(), d, want)
			}
			ops++
		}
	}
	if len(f.Suites) < 20 || ops < 400 {
		t.Fatalf("only %d suites, %d ops", len(f.Suites), ops)
	}
	t.Logf("quota vectors: %d suites, %d ops", len(f.Suites), ops)
}
