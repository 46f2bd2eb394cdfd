package telemetry

import "sort"

// QuotaInfo describes a quota policy's periods for the Monitor.
type QuotaInfo struct {
	// Zone names the clock the periods follow: an IANA zone, a fixed
	// offset ("UTC+05:30"), or "" for a fixed period from an anchor.
	Zone string
	// Period is the period [start, end) holding an instant (epoch ms).
	Period func(atMs int64) (start, end int64)
}

// QuotaSnapshot is a quota policy's current period and its use, as this
// server decided it: the decisions since the period started and the keys
// that used the most of it (limit − remaining after their last decision).
type QuotaSnapshot struct {
	Start   int64      `json:"start"`
	End     int64      `json:"end"`
	Zone    string     `json:"zone"`
	Allowed int64      `json:"allowed"`
	Denied  int64      `json:"denied"`
	TopUsed []QuotaUse `json:"topUsed"`
}

// QuotaUse is a key's use of the current period.
type QuotaUse struct {
	Key   string `json:"key"`
	Used  int64  `json:"used"`
	Limit int64  `json:"limit"`
}

// quotaStats follows a quota policy's current period. Keys are bounded:
// past 4·topK the least-used half is forgotten.
type quotaStats struct {
	info            *QuotaInfo
	start           int64
	allowed, denied int64
	used            map[string]QuotaUse
}

func (q *quotaStats) record(ev Event) {
	start, _ := q.info.Period(ev.At)
	if start != q.start {
		q.start, q.allowed, q.denied = start, 0, 0
		clear(q.used)
	}
	switch ev.Outcome {
	case Allowed:
		q.allowed++
	case Denied, ShadowDenied:
		q.denied++
	}
	if ev.Limit > 0 {
		q.used[ev.Key] = QuotaUse{Key: ev.Key, Used: max(0, ev.Limit-ev.Remaining), Limit: ev.Limit}
		if len(q.used) > 4*topK {
			for _, u := range q.sorted()[2*topK:] {
				delete(q.used, u.Key)
			}
		}
	}
}

func (q *quotaStats) sorted() []QuotaUse {
	out := make([]QuotaUse, 0, len(q.used))
	for _, u := range q.used {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Used != out[j].Used {
			return out[i].Used > out[j].Used
		}
		return out[i].Key < out[j].Key
	})
	return out
}

func (q *quotaStats) snapshot(nowMs int64) *QuotaSnapshot {
	start, end := q.info.Period(nowMs)
	s := &QuotaSnapshot{Start: start, End: end, Zone: q.info.Zone, TopUsed: []QuotaUse{}}
	if start == q.start { // else no decision yet in this period
		s.Allowed, s.Denied = q.allowed, q.denied
		used := q.sorted()
		s.TopUsed = used[:min(topN, len(used))]
	}
	return s
}
