package engine

// Forecast describes when capacity returns to a key, spending nothing.
type Forecast struct {
	// SpendableNow is how many consecutive cost-sized checks at now would be
	// admitted.
	SpendableNow int64
	// NextReplenishAt is the earliest epoch ms t >= now at which Peek(t)
	// reports more remaining than Peek(now); now when already at the ceiling.
	NextReplenishAt int64
	// FullAt is the earliest epoch ms t >= now at which Peek(t) reports the
	// ceiling; now when already full.
	FullAt int64
}

// MaxSimulatedChecks bounds the checks ForecastOf simulates to count
// SpendableNow (see there). Every sliding log (limit ≤ MaxLogLimit) is
// simulated exactly.
const MaxSimulatedChecks = 20_000

// maxHorizonMs caps the forward search (about 35 years); no valid policy
// settles later than that.
const maxHorizonMs = int64(1) << 40

// ForecastOf computes the forecast of a cost-sized request against state s at
// now. It is defined by its properties and computed from them: SpendableNow
// by running checks on a copy of s, and the two instants by a binary search
// over Peek, whose remaining never decreases while nothing is spent. s is not
// modified. cost must be >= 1.
func ForecastOf(st Strategy, s *State, now, cost int64) Forecast {
	f := Forecast{NextReplenishAt: now, FullAt: now}

	// No strategy admits more than floor(limit/cost)+1 requests at one
	// instant. Up to MaxSimulatedChecks of them are simulated, which is
	// exact to the last float-rounded unit; past it (a limit of millions)
	// simulating would cost the server O(limit) per Forecast, so the count
	// is read from Peek instead.
	if bound := st.Limit()/cost + 2; bound <= MaxSimulatedChecks {
		sim := s.Clone()
		for ; f.SpendableNow < bound; f.SpendableNow++ {
			if d, _ := st.Check(&sim, now, cost); !d.Allowed {
				break
			}
		}
	} else {
		f.SpendableNow = st.Peek(s, now).Remaining / cost
	}

	var fresh State
	ceiling := st.Peek(&fresh, now).Remaining
	r0 := st.Peek(s, now).Remaining
	if r0 >= ceiling {
		return f
	}
	f.NextReplenishAt = firstInstant(st, s, now, func(r int64) bool { return r > r0 })
	f.FullAt = firstInstant(st, s, now, func(r int64) bool { return r >= ceiling })
	return f
}

// firstInstant returns the earliest t > now at which pred(Peek(t).Remaining)
// holds, given that it does not hold at now and, once true, stays true.
func firstInstant(st Strategy, s *State, now int64, pred func(int64) bool) int64 {
	holds := func(t int64) bool { return pred(st.Peek(s, t).Remaining) }
	hi := st.settleMs(s, now) + 1
	for !holds(now+hi) && hi < maxHorizonMs {
		hi *= 2
	}
	lo := int64(0) // pred false at now+lo
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if holds(now + mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return now + hi
}
