package engine

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones' rules come with the test, never from the host
)

func mustQuota(t *testing.T, o QuotaOptions) Quota {
	t.Helper()
	q, err := NewQuota(o)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func ms(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("zone %s: %v (the tests need tzdata)", name, err)
	}
	return loc
}

// TestQuotaNodeCases are the cases the ecosystem's Node core pins.
func TestQuotaNodeCases(t *testing.T) {
	t.Run("month, limit 3", func(t *testing.T) {
		q := mustQuota(t, QuotaOptions{Limit: 3, Cadence: CadenceMonth})
		var s State
		now := int64(1779969600000) // 2026-05-28T12:00Z
		for want := int64(2); want >= 0; want-- {
			d, _ := q.Check(&s, now, 1)
			if !d.Allowed || d.Remaining != want || d.ResetAt != 1780272000000 {
				t.Fatalf("check: %+v, want remaining %d reset 1780272000000", d, want)
			}
		}
		d, ttl := q.Check(&s, now, 1)
		if d.Allowed || d.Remaining != 0 || d.RetryAfterMs != 302400000 || ttl != 0 {
			t.Fatalf("4th: %+v ttl %d", d, ttl)
		}
	})
	t.Run("month rollover, limit 2", func(t *testing.T) {
		q := mustQuota(t, QuotaOptions{Limit: 2, Cadence: CadenceMonth})
		var s State
		may := ms("2026-05-31T23:00:00Z")
		q.Check(&s, may, 1)
		q.Check(&s, may, 1)
		if d, _ := q.Check(&s, may, 1); d.Allowed {
			t.Fatal("the 3rd in May was allowed")
		}
		if d, _ := q.Check(&s, ms("2026-06-01T00:00:00Z"), 1); !d.Allowed || d.Remaining != 1 || d.ResetAt != 1782864000000 {
			t.Fatalf("June: %+v", d)
		}
	})
	t.Run("fixed, limit 5, 1000 ms", func(t *testing.T) {
		q := mustQuota(t, QuotaOptions{Limit: 5, Cadence: CadenceFixed, PeriodMs: 1000})
		var s State
		if d, _ := q.Check(&s, 2500, 1); d.ResetAt != 3000 || d.Remaining != 4 {
			t.Fatalf("%+v", d)
		}
	})
	t.Run("fixed, anchor 500", func(t *testing.T) {
		q := mustQuota(t, QuotaOptions{Limit: 2, Cadence: CadenceFixed, PeriodMs: 1000, Anchor: 500})
		var s State
		for i, want := range []bool{true, true, false} {
			d, _ := q.Check(&s, 600, 1)
			if d.Allowed != want || d.ResetAt != 1500 {
				t.Fatalf("check %d at 600: %+v", i+1, d)
			}
		}
		if d, _ := q.Check(&s, 1500, 1); !d.Allowed {
			t.Fatalf("at 1500: %+v", d)
		}
	})
	t.Run("day, limit 2", func(t *testing.T) {
		q := mustQuota(t, QuotaOptions{Limit: 2, Cadence: CadenceDay})
		var s State
		now := ms("2026-05-28T08:00:00Z")
		for i := range 5 {
			d, _ := q.Check(&s, now, 1)
			if d.ResetAt != 1780012800000 || (i >= 2 && (d.Allowed || d.Remaining != 0)) {
				t.Fatalf("check %d: %+v", i+1, d)
			}
		}
	})
	for _, tc := range []struct {
		name       string
		o          QuotaOptions
		now        int64
		start, end int64
	}{
		{"month at +330", QuotaOptions{Cadence: CadenceMonth, OffsetMinutes: 330}, 1706726400000, 1706725800000, 1709231400000},
		{"day at +330", QuotaOptions{Cadence: CadenceDay, OffsetMinutes: 330}, ms("2024-01-31T20:00:00Z"), 1706725800000, 1706812200000},
		{"week (Monday) at +330", QuotaOptions{Cadence: CadenceWeek, OffsetMinutes: 330}, ms("2024-01-31T20:00:00Z"), 1706466600000, 1707071400000},
		{"week, Monday", QuotaOptions{Cadence: CadenceWeek}, ms("2026-05-28T09:00:00Z"), 1779667200000, 1780272000000},
		{"week, Sunday", QuotaOptions{Cadence: CadenceWeek, WeekStartsOnSet: true}, ms("2026-05-28T09:00:00Z"), 1779580800000, 1780185600000},
		{"February 2024", QuotaOptions{Cadence: CadenceMonth}, ms("2024-02-10T00:00:00Z"), ms("2024-02-01T00:00:00Z"), ms("2024-03-01T00:00:00Z")},
		{"February 2023", QuotaOptions{Cadence: CadenceMonth}, ms("2023-02-10T00:00:00Z"), ms("2023-02-01T00:00:00Z"), ms("2023-03-01T00:00:00Z")},
		{"December 2025", QuotaOptions{Cadence: CadenceMonth}, ms("2025-12-31T23:59:59Z"), ms("2025-12-01T00:00:00Z"), ms("2026-01-01T00:00:00Z")},
		{"February 2100", QuotaOptions{Cadence: CadenceMonth}, ms("2100-02-28T00:00:00Z"), ms("2100-02-01T00:00:00Z"), ms("2100-03-01T00:00:00Z")},
		{"February 2400", QuotaOptions{Cadence: CadenceMonth}, ms("2400-02-29T00:00:00Z"), ms("2400-02-01T00:00:00Z"), ms("2400-03-01T00:00:00Z")},
		{"before 1970", QuotaOptions{Cadence: CadenceDay}, ms("1969-12-31T13:00:00Z"), ms("1969-12-31T00:00:00Z"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Limit = 1
			if start, end := mustQuota(t, tc.o).Period(tc.now); start != tc.start || end != tc.end {
				t.Fatalf("period %d … %d, want %d … %d", start, end, tc.start, tc.end)
			}
		})
	}
	if got := mustQuota(t, QuotaOptions{Limit: 1, Cadence: CadenceMonth}).settleMs(&State{}, ms("2024-02-01T00:00:00Z")); got != 29*dayMs {
		t.Fatalf("February 2024 settles in %d ms, not 29 days", got)
	}
}

// TestQuotaOffsetBoundariesAreTheCalendars checks the integer civil-date
// arithmetic against the standard library's calendar (a fixed zone) at
// 100,000 random instants from 1600 to 2600, every offset, every cadence.
func TestQuotaOffsetBoundariesAreTheCalendars(t *testing.T) {
	rng := rand.New(rand.NewPCG(24, 7))
	lo, hi := ms("1600-01-01T00:00:00Z"), ms("2600-01-01T00:00:00Z")
	for range 100_000 {
		now := lo + rng.Int64N(hi-lo)
		off := rng.Int64N(1681) - 840
		week := rng.Int64N(7)
		loc := time.FixedZone("", int(off*60))
		local := time.UnixMilli(now).In(loc)
		y, m, d := local.Date()
		first := d - int(floorMod(int64(local.Weekday())-week, 7))
		for _, c := range []struct {
			o          QuotaOptions
			start, end time.Time
		}{
			{QuotaOptions{Cadence: CadenceDay}, time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)},
			{QuotaOptions{Cadence: CadenceWeek, WeekStartsOn: week, WeekStartsOnSet: true}, time.Date(y, m, first, 0, 0, 0, 0, loc), time.Date(y, m, first+7, 0, 0, 0, 0, loc)},
			{QuotaOptions{Cadence: CadenceMonth}, time.Date(y, m, 1, 0, 0, 0, 0, loc), time.Date(y, m+1, 1, 0, 0, 0, 0, loc)},
		} {
			c.o.Limit, c.o.OffsetMinutes = 1, off
			start, end := mustQuota(t, c.o).Period(now)
			if start != c.start.UnixMilli() || end != c.end.UnixMilli() {
				t.Fatalf("%s at %d (offset %d min, week from %d): %d … %d, the calendar says %d … %d",
					c.o.Cadence, now, off, week, start, end, c.start.UnixMilli(), c.end.UnixMilli())
			}
		}
	}
}

// TestQuotaTimeZones: periods start at local midnights by the zone's
// rules: 23- and 25-hour days across DST, a half-hour shift, and zones
// that skip midnight itself.
func TestQuotaTimeZones(t *testing.T) {
	for _, tc := range []struct {
		name       string
		zone       string
		cadence    Cadence
		now        string
		start, end string // RFC 3339 instants
		hours      float64
	}{
		{"New York, spring forward: a 23-hour day", "America/New_York", CadenceDay, "2026-03-08T12:00:00-04:00", "2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00", 23},
		{"New York, fall back: a 25-hour day", "America/New_York", CadenceDay, "2026-11-01T12:00:00-05:00", "2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00", 25},
		{"Berlin, a month across DST starts at local 00:00", "Europe/Berlin", CadenceMonth, "2026-03-15T12:00:00+01:00", "2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00", 31*24 - 1},
		{"Berlin, a week across fall-back", "Europe/Berlin", CadenceWeek, "2026-10-28T12:00:00+01:00", "2026-10-26T00:00:00+01:00", "2026-11-02T00:00:00+01:00", 168},
		{"Berlin, the week of the change", "Europe/Berlin", CadenceWeek, "2026-10-21T12:00:00+02:00", "2026-10-19T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 169},
		{"Lord Howe's half-hour shift: a 23.5-hour day", "Australia/Lord_Howe", CadenceDay, "2026-10-04T12:00:00+11:00", "2026-10-04T00:00:00+10:30", "2026-10-05T00:00:00+11:00", 23.5},
		{"Lord Howe back: a 24.5-hour day", "Australia/Lord_Howe", CadenceDay, "2026-04-05T12:00:00+10:30", "2026-04-05T00:00:00+11:00", "2026-04-06T00:00:00+10:30", 24.5},
		// Santiago skipped 00:00 on 2022-09-11 (clocks went from 24:00 to
		// 01:00): the day starts at the first instant after the gap.
		{"Santiago skips midnight", "America/Santiago", CadenceDay, "2022-09-11T12:00:00-03:00", "2022-09-11T01:00:00-03:00", "2022-09-12T00:00:00-03:00", 23},
		{"Santiago, the day before the gap", "America/Santiago", CadenceDay, "2022-09-10T12:00:00-04:00", "2022-09-10T00:00:00-04:00", "2022-09-11T01:00:00-03:00", 24},
		// Beirut too (clocks went from 00:00 to 01:00 on 2023-03-26).
		{"Beirut skips midnight", "Asia/Beirut", CadenceDay, "2023-03-26T12:00:00+03:00", "2023-03-26T01:00:00+03:00", "2023-03-27T00:00:00+03:00", 23},
		{"Beirut, a month that starts normally", "Asia/Beirut", CadenceMonth, "2023-03-26T12:00:00+03:00", "2023-03-01T00:00:00+02:00", "2023-04-01T00:00:00+03:00", 31*24 - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := mustQuota(t, QuotaOptions{Limit: 2, Cadence: tc.cadence, Location: zone(t, tc.zone)})
			start, end := q.Period(ms(tc.now))
			if start != ms(tc.start) || end != ms(tc.end) {
				t.Fatalf("period %s … %s, want %s … %s", time.UnixMilli(start).In(q.loc), time.UnixMilli(end).In(q.loc), tc.start, tc.end)
			}
			if got := float64(end-start) / 3_600_000; got != tc.hours {
				t.Fatalf("the period lasts %v hours, want %v", got, tc.hours)
			}
			// The boundaries decide: the last instant before end is in the
			// period, end itself starts the next, for Check too.
			var s State
			q.Check(&s, end-1, 2)
			if d, _ := q.Check(&s, end-1, 1); d.Allowed || d.RetryAfterMs != 1 {
				t.Fatalf("at end-1 after the period's limit: %+v", d)
			}
			if d, _ := q.Check(&s, end, 1); !d.Allowed || d.Remaining != 1 {
				t.Fatalf("at end: %+v", d)
			}
			// Cached periods agree with computed ones wherever now is.
			for _, at := range []int64{start, start + 1, end - 1} {
				if s2, e2 := q.Period(at); s2 != start || e2 != end {
					t.Fatalf("Period(%d) = %d … %d after the cache moved", at, s2, e2)
				}
			}
		})
	}
}

func TestQuotaOptions(t *testing.T) {
	ny := zone(t, "America/New_York")
	for _, tc := range []struct {
		o     QuotaOptions
		field string
	}{
		{QuotaOptions{Limit: 0, Cadence: CadenceDay}, "limit"},
		{QuotaOptions{Limit: 1, Cadence: "calendar-fortnight"}, "resetCadence"},
		{QuotaOptions{Limit: 1, Cadence: CadenceDay, OffsetMinutes: 841}, "offsetMinutes"},
		{QuotaOptions{Limit: 1, Cadence: CadenceDay, OffsetMinutes: 60, Location: ny}, "timeZone"},
		{QuotaOptions{Limit: 1, Cadence: CadenceWeek, WeekStartsOn: 7, WeekStartsOnSet: true}, "weekStartsOn"},
		{QuotaOptions{Limit: 1, Cadence: CadenceDay, WeekStartsOn: 1, WeekStartsOnSet: true}, "weekStartsOn"},
		{QuotaOptions{Limit: 1, Cadence: CadenceMonth, PeriodMs: 1000}, "period"},
		{QuotaOptions{Limit: 1, Cadence: CadenceFixed}, "period"},
		{QuotaOptions{Limit: 1, Cadence: CadenceFixed, PeriodMs: 1.5}, "period"},
		{QuotaOptions{Limit: 1, Cadence: CadenceFixed, PeriodMs: 1000, OffsetMinutes: 60}, "offsetMinutes"},
		{QuotaOptions{Limit: 1, Cadence: CadenceRolling, PeriodMs: 1000, Location: ny}, "timeZone"},
		{QuotaOptions{Limit: 1, Cadence: CadenceRolling}, "period"},
		{QuotaOptions{Limit: 1, Cadence: CadenceRolling, PeriodMs: 1000, Anchor: 5}, "anchor"},
		{QuotaOptions{Limit: 1, Cadence: CadenceDay, Buckets: 4}, "buckets"},
	} {
		_, err := NewQuota(tc.o)
		oe, ok := err.(*OptionError)
		if !ok || oe.Field != tc.field {
			t.Errorf("%+v: %v, want an error on %s", tc.o, err, tc.field)
		}
	}
	if _, err := NewQuota(QuotaOptions{Limit: 1, Cadence: CadenceDay, WeekStartsOn: 3, WeekStartsOnSet: true}); err == nil || !strings.Contains(err.Error(), "not used by resetCadence calendar-day") {
		t.Errorf("an unused field's error says why: %v", err)
	}
}

// TestQuotaForecastAndRolling: Forecast as the spec says (spendable now;
// replenished, and full, at the period's end), and a rolling quota decides
// as the sliding window it is.
func TestQuotaForecastAndRolling(t *testing.T) {
	q := mustQuota(t, QuotaOptions{Limit: 10, Cadence: CadenceDay})
	now := ms("2026-05-28T08:00:00Z")
	var s State
	if f := ForecastOf(q, &s, now, 3); f.SpendableNow != 3 || f.NextReplenishAt != now || f.FullAt != now {
		t.Fatalf("fresh: %+v", f)
	}
	q.Check(&s, now, 4)
	end := ms("2026-05-29T00:00:00Z")
	if f := ForecastOf(q, &s, now, 3); f.SpendableNow != 2 || f.NextReplenishAt != end || f.FullAt != end {
		t.Fatalf("after 4: %+v, want 2 spendable, both at %d", f, end)
	}
	if !q.Refund(&s, now, now+5, 4) || q.Peek(&s, now+5).Remaining != 10 {
		t.Fatal("a refund in the period did not give the units back")
	}
	r := mustQuota(t, QuotaOptions{Limit: 5, Cadence: CadenceRolling, PeriodMs: 60_000, Buckets: 6})
	sw, _ := NewSlidingWindow(5, 60_000, 6)
	var a, b State
	for i := range int64(40) {
		at := now + i*2_500
		da, ta := r.Check(&a, at, 1)
		db, tb := sw.Check(&b, at, 1)
		if da != db || ta != tb {
			t.Fatalf("op %d: rolling quota %+v, sliding window %+v", i, da, db)
		}
	}
	if r.Kind() != KindQuota {
		t.Fatal("a rolling quota reports itself as a sliding window")
	}
}

func BenchmarkQuotaCheck(b *testing.B) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	fw, _ := NewFixedWindow(1<<40, 86_400_000)
	for _, c := range []struct {
		name string
		st   Strategy
	}{
		{"fixedWindow", fw},
		{"quota-day-offset", mustQuotaB(b, QuotaOptions{Limit: 1 << 40, Cadence: CadenceDay, OffsetMinutes: 330})},
		{"quota-month-offset", mustQuotaB(b, QuotaOptions{Limit: 1 << 40, Cadence: CadenceMonth})},
		{"quota-month-zone", mustQuotaB(b, QuotaOptions{Limit: 1 << 40, Cadence: CadenceMonth, Location: loc})},
	} {
		b.Run(c.name, func(b *testing.B) {
			var s State
			now := int64(1_780_000_000_000)
			b.ReportAllocs()
			for b.Loop() {
				now++
				c.st.Check(&s, now, 1)
			}
		})
	}
}

func mustQuotaB(b *testing.B, o QuotaOptions) Quota {
	q, err := NewQuota(o)
	if err != nil {
		b.Fatal(err)
	}
	return q
}
