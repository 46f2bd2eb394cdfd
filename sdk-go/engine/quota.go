package engine

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// KindQuota is a limit that resets on the calendar (see Quota).
const KindQuota Kind = "quota"

// Cadence is when a quota resets.
type Cadence string

// The cadences, spelled as the policy file spells them.
const (
	// CadenceDay resets at every local midnight.
	CadenceDay Cadence = "calendar-day"
	// CadenceWeek resets at the local midnight that starts the week.
	CadenceWeek Cadence = "calendar-week"
	// CadenceMonth resets at local 00:00 on the 1st.
	CadenceMonth Cadence = "calendar-month"
	// CadenceFixed resets every period from an anchor, whatever the
	// calendar says.
	CadenceFixed Cadence = "fixed"
	// CadenceRolling is a sliding window of the period, in buckets.
	CadenceRolling Cadence = "rolling"
)

// QuotaOptions configure NewQuota. Which fields a cadence takes is in
// each field's comment; a field the cadence does not take must be zero.
type QuotaOptions struct {
	// Limit is the units per period (a positive integer; every cadence).
	Limit int64
	// Cadence is when the quota resets (required).
	Cadence Cadence
	// OffsetMinutes is a fixed UTC offset for the calendar cadences, in
	// [-840, 840] (default 0: UTC).
	OffsetMinutes int64
	// Location is a time zone for the calendar cadences instead of a
	// fixed offset: periods start at local midnights by the zone's rules,
	// so a day across a DST change lasts 23 or 25 hours, and a midnight
	// the zone skips starts the period at the first instant after the
	// gap. (nil: OffsetMinutes decides.)
	Location *time.Location
	// WeekStartsOn is the first day of a calendar week, 0 = Sunday … 6 =
	// Saturday (calendar-week; default 1, Monday, when WeekStartsOnSet
	// is false).
	WeekStartsOn    int64
	WeekStartsOnSet bool
	// PeriodMs is the period's length (fixed and rolling; required there).
	PeriodMs float64
	// Anchor is the epoch ms where period 0 of a fixed quota starts (may
	// be negative or in the future; default 0).
	Anchor int64
	// Buckets are a rolling quota's sub-windows (default 10).
	Buckets int64
}

// Quota counts units per period and resets on a real boundary — local
// midnight, the start of a week, the 1st of the month, or every fixed
// period from an anchor — rather than on a window relative to requests. A
// rolling quota is a SlidingWindow reported as a quota.
//
// State (every cadence but rolling): V0 = the period's start (epoch ms),
// V1 = units counted in it; a state of another period counts 0 (no
// carry-over). A rolling quota keeps the sliding window's state.
type Quota struct {
	limit   float64
	cadence Cadence
	offset  int64          // ms, for a fixed-offset calendar quota
	loc     *time.Location // nil: the fixed offset
	weekDay int64          // the day a week starts on, 0 = Sunday
	period  int64          // ms, fixed
	anchor  int64          // ms, fixed
	rolling *SlidingWindow // rolling only
	// last caches the calendar period the latest decision fell in:
	// computing a period (civil-date arithmetic, or local midnights from a
	// zone's rules) costs more than the decision, and almost every decision
	// lands in the period of the one before.
	last *atomic.Pointer[span]
}

// span is one period, [start, end) in epoch ms.
type span struct{ start, end int64 }

// dayMs is a civil day of a fixed offset.
const dayMs = 86_400_000

// NewQuota returns a quota, refusing any option the cadence does not take.
func NewQuota(o QuotaOptions) (Quota, error) {
	if err := positiveInt("limit", float64(o.Limit)); err != nil {
		return Quota{}, err
	}
	q := Quota{limit: float64(o.Limit), cadence: o.Cadence}
	calendar := o.Cadence == CadenceDay || o.Cadence == CadenceWeek || o.Cadence == CadenceMonth
	unused := func(field string, set bool) error {
		if set {
			return &OptionError{Field: field, Reason: "is not used by resetCadence " + string(o.Cadence)}
		}
		return nil
	}
	for _, c := range []struct {
		field string
		set   bool
	}{
		{"offsetMinutes", !calendar && o.OffsetMinutes != 0},
		{"timeZone", !calendar && o.Location != nil},
		{"weekStartsOn", o.Cadence != CadenceWeek && o.WeekStartsOnSet},
		{"period", calendar && o.PeriodMs != 0},
		{"anchor", o.Cadence != CadenceFixed && o.Anchor != 0},
		{"buckets", o.Cadence != CadenceRolling && o.Buckets != 0},
	} {
		if err := unused(c.field, c.set); err != nil {
			return Quota{}, err
		}
	}
	switch o.Cadence {
	case CadenceDay, CadenceWeek, CadenceMonth:
		if o.OffsetMinutes < -840 || o.OffsetMinutes > 840 {
			return Quota{}, &OptionError{Field: "offsetMinutes", Reason: "must be an integer from -840 to 840"}
		}
		if o.Location != nil && o.OffsetMinutes != 0 {
			return Quota{}, &OptionError{Field: "timeZone", Reason: "and offsetMinutes are exclusive: give one"}
		}
		q.offset, q.loc = o.OffsetMinutes*60_000, o.Location
		q.weekDay = 1
		if o.WeekStartsOnSet {
			if o.WeekStartsOn < 0 || o.WeekStartsOn > 6 {
				return Quota{}, &OptionError{Field: "weekStartsOn", Reason: "must be 0 (Sunday) to 6 (Saturday)"}
			}
			q.weekDay = o.WeekStartsOn
		}
		q.last = new(atomic.Pointer[span])
	case CadenceFixed:
		if err := positiveInt("period", o.PeriodMs); err != nil {
			return Quota{}, &OptionError{Field: "period", Reason: "must be a positive whole number of ms"}
		}
		q.period, q.anchor = int64(o.PeriodMs), o.Anchor
		if math.Abs(float64(q.anchor)) > maxExact {
			return Quota{}, &OptionError{Field: "anchor", Reason: "must be an epoch ms within ±2^53"}
		}
	case CadenceRolling:
		buckets := o.Buckets
		if buckets == 0 {
			buckets = 10
		}
		sw, err := NewSlidingWindow(o.Limit, o.PeriodMs, buckets)
		if err != nil {
			if oe, ok := err.(*OptionError); ok && oe.Field == "windowMs" {
				oe.Field = "period"
			}
			return Quota{}, err
		}
		q.rolling = &sw
	default:
		return Quota{}, &OptionError{Field: "resetCadence", Reason: "must be calendar-day, calendar-week, calendar-month, fixed or rolling"}
	}
	return q, nil
}

// Kind implements Strategy.
func (Quota) Kind() Kind { return KindQuota }

// Limit is the units per period.
func (q Quota) Limit() int64 { return int64(q.limit) }

// Cadence is when the quota resets.
func (q Quota) Cadence() Cadence { return q.cadence }

// Rolling returns a rolling quota's sliding window (ok false for every
// other cadence): the stores keep a rolling quota in its layout.
func (q Quota) Rolling() (sw SlidingWindow, ok bool) {
	if q.rolling == nil {
		return SlidingWindow{}, false
	}
	return *q.rolling, true
}

// Location is a calendar quota's time zone (nil: a fixed offset decides).
func (q Quota) Location() *time.Location { return q.loc }

// OffsetMinutes is a fixed-offset calendar quota's UTC offset.
func (q Quota) OffsetMinutes() int64 { return q.offset / 60_000 }

// WeekStartsOn is the day a calendar week starts on, 0 = Sunday.
func (q Quota) WeekStartsOn() int64 { return q.weekDay }

// PeriodMs is a fixed quota's period (0 for the other cadences).
func (q Quota) PeriodMs() int64 { return q.period }

// Anchor is the epoch ms where a fixed quota's period 0 starts.
func (q Quota) Anchor() int64 { return q.anchor }

// Around returns, ascending, the boundaries of three periods of a calendar
// quota: the one before now's, now's, and the next. A store that cannot
// apply a zone's rules itself (a Redis script) is sent these and decides on
// its own clock, which may then differ from the caller's by up to a period.
func (q Quota) Around(now int64) [4]int64 {
	start, end := q.Period(now)
	if q.rolling != nil || q.cadence == CadenceFixed {
		return [4]int64{start - (end - start), start, end, end + (end - start)}
	}
	before, _ := q.calendar(start - 1)
	_, after := q.calendar(end)
	return [4]int64{before, start, end, after}
}

// String describes the quota by its options (never its cache), so two
// quotas of the same options print alike.
func (q Quota) String() string {
	switch {
	case q.rolling != nil:
		return fmt.Sprintf("quota(limit %d, rolling %gms in %d buckets)", q.Limit(), q.rolling.windowMs, q.rolling.Buckets())
	case q.cadence == CadenceFixed:
		return fmt.Sprintf("quota(limit %d, fixed %dms from %d)", q.Limit(), q.period, q.anchor)
	case q.loc != nil:
		return fmt.Sprintf("quota(limit %d, %s in %s, weeks from %d)", q.Limit(), q.cadence, q.loc, q.weekDay)
	}
	return fmt.Sprintf("quota(limit %d, %s at %+d min, weeks from %d)", q.Limit(), q.cadence, q.offset/60_000, q.weekDay)
}

// Period returns the period now falls in, [start, end) in epoch ms. A
// rolling quota has no period: it returns now and now plus its window.
func (q Quota) Period(now int64) (start, end int64) {
	switch {
	case q.rolling != nil:
		return now, now + int64(q.rolling.windowMs)
	case q.cadence == CadenceFixed:
		start = q.anchor + floorDiv(now-q.anchor, q.period)*q.period
		return start, start + q.period
	}
	if p := q.last.Load(); p != nil && now >= p.start && now < p.end {
		return p.start, p.end
	}
	start, end = q.calendar(now)
	q.last.Store(&span{start, end})
	return start, end
}

// calendar is a calendar period, computed (Period caches it).
func (q Quota) calendar(now int64) (start, end int64) {
	if q.loc != nil {
		return q.zoned(now)
	}
	return q.offsetPeriod(now)
}

// offsetPeriod is a calendar period at a fixed UTC offset, in integer
// civil-date arithmetic (proleptic Gregorian, correct for negative
// instants): the same computation as the Redis script's.
func (q Quota) offsetPeriod(now int64) (start, end int64) {
	day := floorDiv(now+q.offset, dayMs)
	switch q.cadence {
	case CadenceDay:
		return day*dayMs - q.offset, (day+1)*dayMs - q.offset
	case CadenceWeek:
		dow := floorMod(day+4, 7) // 1970-01-01 was a Thursday; 0 = Sunday
		first := day - floorMod(dow-q.weekDay, 7)
		return first*dayMs - q.offset, (first+7)*dayMs - q.offset
	}
	y, m, _ := civilFromDays(day)
	next, nm := y, m+1
	if nm > 12 {
		next, nm = y+1, 1
	}
	return daysFromCivil(y, m, 1)*dayMs - q.offset, daysFromCivil(next, nm, 1)*dayMs - q.offset
}

// zoned is a calendar period by the zone's rules: from the local midnight
// that starts it to the one that starts the next.
func (q Quota) zoned(now int64) (start, end int64) {
	t := time.UnixMilli(now).In(q.loc)
	y, m, d := t.Date()
	switch q.cadence {
	case CadenceDay:
		return q.midnight(y, m, d), q.midnight(y, m, d+1)
	case CadenceWeek:
		first := d - int(floorMod(int64(t.Weekday())-q.weekDay, 7))
		return q.midnight(y, m, first), q.midnight(y, m, first+7)
	}
	return q.midnight(y, m, 1), q.midnight(y, m+1, 1)
}

// midnight is the instant local 00:00 of the civil date (y, m, d) —
// normalized as time.Date does, so d+1 past a month's end is the next
// month's first — or, in a zone that skips that midnight, the first instant
// after the gap.
func (q Quota) midnight(y int, m time.Month, d int) int64 {
	c := time.Date(y, m, d, 0, 0, 0, 0, q.loc)
	wy, wm, wd := time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Date() // the normalized date meant
	if cy, cm, cd := c.Date(); cy == wy && cm == wm && cd == wd && c.Hour() == 0 && c.Minute() == 0 {
		return c.UnixMilli()
	}
	// 00:00 fell in a gap: Go picked an instant either side of it. The
	// transition that made the gap starts the date's first instant.
	zoneStart, zoneEnd := c.ZoneBounds()
	if cy, cm, cd := c.Date(); cy == wy && cm == wm && cd == wd {
		return zoneStart.UnixMilli() // c is later on the date: the gap ended at the zone's start
	}
	return zoneEnd.UnixMilli() // c is on the day before: the gap starts where its zone ends
}

// count is the units counted in the period [start, end) that s holds.
func (q Quota) count(s *State, start int64) float64 {
	if s.Present && s.V0 == float64(start) {
		return s.V1
	}
	return 0
}

// Check implements Strategy: allowed when the period's count plus cost fits
// the limit; a denial spends nothing and advises waiting for the period's
// end.
func (q Quota) Check(s *State, now, cost int64) (Decision, int64) {
	if q.rolling != nil {
		return q.rolling.Check(s, now, cost)
	}
	start, end := q.Period(now)
	c, n := q.count(s, start), float64(cost)
	if c+n <= q.limit {
		s.Present, s.V0, s.V1, s.Series = true, float64(start), c+n, nil
		return Decision{Allowed: true, Limit: q.Limit(), Remaining: toInt(q.limit - (c + n)), ResetAt: end}, max(1, end-now)
	}
	return Decision{Limit: q.Limit(), Remaining: nonNegative(toInt(q.limit - c)), ResetAt: end, RetryAfterMs: end - now}, 0
}

// Peek implements Strategy.
func (q Quota) Peek(s *State, now int64) Decision {
	if q.rolling != nil {
		return q.rolling.Peek(s, now)
	}
	start, end := q.Period(now)
	c := q.count(s, start)
	d := Decision{Allowed: c+1 <= q.limit, Limit: q.Limit(), Remaining: nonNegative(toInt(q.limit - c)), ResetAt: end}
	if !d.Allowed {
		d.RetryAfterMs = end - now
	}
	return d
}

// Refund implements Refunder: the period's count loses cost units while the
// period of at is still the one kept.
func (q Quota) Refund(s *State, at, now, cost int64) bool {
	if q.rolling != nil {
		return q.rolling.Refund(s, at, now, cost)
	}
	start, _ := q.Period(at)
	if !s.Present || s.V0 != float64(start) || s.V1 <= 0 {
		return false
	}
	s.V1 = math.Max(0, s.V1-float64(cost))
	return true
}

func (q Quota) settleMs(s *State, now int64) int64 {
	if q.rolling != nil {
		return q.rolling.settleMs(s, now)
	}
	_, end := q.Period(now)
	return nonNegative(end - now)
}

func (q Quota) sane(s *State, n float64) bool {
	if q.rolling != nil {
		return q.rolling.sane(s, n)
	}
	// A period's start never lies ahead of the clock (past the skew).
	return finite(s.V0) && s.V0 <= n+MaxSkewMs && count(s.V1)
}

// floorDiv and floorMod round toward negative infinity, as the boundary
// arithmetic needs for instants before 1970.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

// civilFromDays converts days since 1970-01-01 to a proleptic-Gregorian
// (year, month, day), and daysFromCivil back (Howard Hinnant's algorithms).
func civilFromDays(z int64) (y, m, d int64) {
	z += 719_468
	era := floorDiv(z, 146_097)
	doe := z - era*146_097
	yoe := (doe - doe/1460 + doe/36_524 - doe/146_096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146_097 + doe - 719_468
}
