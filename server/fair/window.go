package fair

import (
	"math"
	"sort"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// tenant is one active tenant of a window.
type tenant struct {
	name       string
	weight     float64
	used       int64
	prev, next *tenant // least recently used order: head is the newest
}

// class is the tenants of one weight: their guaranteed share is the same,
// so the reserve they hold is counted from how many of them used how much.
// Distinct positive uses summing to at most the limit number at most
// √(2L), so counting the reserve costs that, not one step per tenant.
type class struct {
	weight float64
	n      int
	byUsed map[int64]int
}

// Window is one window of a fair share: the tenants active in it, what each
// used, and what evicted tenants used. It is not safe for concurrent use
// (Local and Region hold it under their locks). Memory is bounded by
// maxKeys tenants and the distinct weights of the rule.
type Window struct {
	start       int64
	tenants     map[string]*tenant
	head, tail  *tenant
	classes     []*class // by ascending weight: the weight sum is summed in one order
	used        int64    // Σ used of the tenants present
	evictedUsed int64    // Σ used of the tenants evicted this window
	maxKeys     int
}

// NewWindow returns an empty window starting at start (epoch ms), keeping at
// most maxKeys tenants (0: DefaultMaxKeys).
func NewWindow(start int64, maxKeys int) *Window {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Window{start: start, tenants: map[string]*tenant{}, maxKeys: maxKeys}
}

// Start is the window's first instant (epoch ms).
func (w *Window) Start() int64 { return w.start }

// Used is what the window admitted: the tenants present and those evicted.
func (w *Window) Used() int64 { return w.used + w.evictedUsed }

// Tenants is how many tenants the window holds.
func (w *Window) Tenants() int { return len(w.tenants) }

// Evicted is what tenants evicted from the window had used.
func (w *Window) Evicted() int64 { return w.evictedUsed }

// Weight is the sum of the active tenants' weights.
func (w *Window) Weight() float64 {
	var sum float64
	for _, c := range w.classes {
		sum += c.weight * float64(c.n)
	}
	return sum
}

// share is g(x) = floor(w_x · L / W): multiply, then divide.
func share(weight float64, limit int64, total float64) int64 {
	if total <= 0 {
		return 0
	}
	return int64(math.Floor(weight * float64(limit) / total))
}

// join makes name active with weight (read on every call: a reload may
// change it), most recently used; a new tenant past maxKeys evicts the
// least recently used one, whose use stays counted.
func (w *Window) join(name string, weight float64) *tenant {
	t, _ := w.joined(name, weight)
	return t
}

// joined is join, reporting whether the window's weight changed (a tenant
// joined, or its weight is new).
func (w *Window) joined(name string, weight float64) (*tenant, bool) {
	if t, ok := w.tenants[name]; ok {
		changed := t.weight != weight
		if changed {
			w.leaveClass(t)
			t.weight = weight
			w.enterClass(t)
		}
		w.touch(t)
		return t, changed
	}
	if len(w.tenants) >= w.maxKeys && w.tail != nil {
		w.evict(w.tail)
	}
	t := &tenant{name: name, weight: weight}
	w.tenants[name] = t
	w.enterClass(t)
	w.pushFront(t)
	return t, true
}

func (w *Window) evict(t *tenant) {
	w.unlink(t)
	w.leaveClass(t)
	delete(w.tenants, t.name)
	w.used -= t.used
	w.evictedUsed += t.used
}

func (w *Window) classOf(weight float64, create bool) *class {
	i := sort.Search(len(w.classes), func(i int) bool { return w.classes[i].weight >= weight })
	if i < len(w.classes) && w.classes[i].weight == weight {
		return w.classes[i]
	}
	if !create {
		return nil
	}
	c := &class{weight: weight, byUsed: map[int64]int{}}
	w.classes = append(w.classes, nil)
	copy(w.classes[i+1:], w.classes[i:])
	w.classes[i] = c
	return c
}

func (w *Window) enterClass(t *tenant) {
	c := w.classOf(t.weight, true)
	c.n++
	c.byUsed[t.used]++
}

func (w *Window) leaveClass(t *tenant) {
	c := w.classOf(t.weight, false)
	c.n--
	if c.byUsed[t.used]--; c.byUsed[t.used] == 0 {
		delete(c.byUsed, t.used)
	}
	if c.n == 0 {
		i := sort.Search(len(w.classes), func(i int) bool { return w.classes[i].weight >= c.weight })
		w.classes = append(w.classes[:i], w.classes[i+1:]...)
	}
}

// spend adds n to t's use.
func (w *Window) spend(t *tenant, n int64) {
	c := w.classOf(t.weight, false)
	if c.byUsed[t.used]--; c.byUsed[t.used] == 0 {
		delete(c.byUsed, t.used)
	}
	t.used += n
	c.byUsed[t.used]++
	w.used += n
}

// reserve is Σ_j max(0, g_j − used_j) over the active tenants but except
// (nil: over all of them), with g computed against limit and total weight.
func (w *Window) reserve(limit int64, total float64, except *tenant) int64 {
	var sum int64
	for _, c := range w.classes {
		g := share(c.weight, limit, total)
		if g <= 0 {
			continue
		}
		for used, n := range c.byUsed {
			if used < g {
				sum += int64(n) * (g - used)
			}
		}
	}
	if except != nil {
		sum -= max(0, share(except.weight, limit, total)-except.used)
	}
	return sum
}

// decide applies the fair rule to tenant t asking for cost, within limit
// (the policy's L, or a region's grant); windowMs and now give resetAt and
// retryAfterMs. It spends on an admission.
func (w *Window) decide(t *tenant, cost, limit, windowMs, now int64) engine.Decision {
	total := w.Weight()
	g := share(t.weight, limit, total)
	left := limit - w.Used()
	resetAt := w.start + windowMs
	deny := func(lim, rem int64) engine.Decision {
		return engine.Decision{Limit: lim, Remaining: max(0, rem), ResetAt: resetAt, RetryAfterMs: max(0, resetAt-now)}
	}
	// 1. Nothing left in the pool for this cost.
	if cost > left {
		return deny(max(g, t.used), g-t.used)
	}
	// 2. Within the tenant's guaranteed share.
	if t.used+cost <= g {
		w.spend(t, cost)
		return engine.Decision{Allowed: true, Limit: g, Remaining: g - t.used, ResetAt: resetAt}
	}
	// 3. Borrow what no other active tenant could still claim.
	avail := max(0, left-w.reserve(limit, total, t))
	wanted := t.used + cost - g
	grant := min(wanted, cost, avail, left)
	ceiling := g + grant
	if t.used+cost > ceiling {
		return deny(ceiling, ceiling-t.used)
	}
	w.spend(t, cost)
	return engine.Decision{Allowed: true, Limit: ceiling, Remaining: ceiling - t.used, ResetAt: resetAt}
}

// admits reports whether t's cost fits within limit, as decide would say,
// spending nothing.
func (w *Window) admits(t *tenant, cost, limit int64) bool {
	total := w.Weight()
	g := share(t.weight, limit, total)
	left := limit - w.Used()
	switch {
	case cost > left:
		return false
	case t.used+cost <= g:
		return true
	}
	avail := max(0, left-w.reserve(limit, total, t))
	return t.used+cost <= g+min(t.used+cost-g, cost, avail, left)
}

// want is what a region asks its pool for before deciding t's cost, at
// most limit: its use, the reserve its other tenants still hold within
// grant, and the cost (the ecosystem's ask) — and, when that would not yet
// admit the cost (a larger grant raises the shares the other tenants keep),
// the least grant that does, found by bisection. One ask then does what the
// ecosystem's repeated asks converge to, in one round trip.
func (w *Window) want(t *tenant, cost, grant, limit int64) int64 {
	want := min(limit, w.Used()+w.reserve(grant, w.Weight(), t)+cost)
	if w.admits(t, cost, want) || !w.admits(t, cost, limit) {
		return want
	}
	lo, hi := want, limit // lo does not admit; hi does
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if w.admits(t, cost, mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

func (w *Window) pushFront(t *tenant) {
	t.prev, t.next = nil, w.head
	if w.head != nil {
		w.head.prev = t
	}
	w.head = t
	if w.tail == nil {
		w.tail = t
	}
}

func (w *Window) unlink(t *tenant) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		w.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		w.tail = t.prev
	}
	t.prev, t.next = nil, nil
}

func (w *Window) touch(t *tenant) {
	if w.head == t {
		return
	}
	w.unlink(t)
	w.pushFront(t)
}

// TenantUse is one tenant's standing in a window, for telemetry.
type TenantUse struct {
	Tenant string  `json:"tenant"`
	Weight float64 `json:"weight"`
	// Guaranteed is the tenant's share g = floor(w · L / W) now.
	Guaranteed int64 `json:"guaranteed"`
	Used       int64 `json:"used"`
	// Borrowed is what it used beyond its guarantee.
	Borrowed int64 `json:"borrowed"`
}

// Top is the n tenants that used most (ties by name), against limit: one
// pass over the tenants, keeping n.
func (w *Window) Top(n int, limit int64) []TenantUse {
	total := w.Weight()
	before := func(a, b *tenant) bool { return a.used > b.used || (a.used == b.used && a.name < b.name) }
	top := make([]*tenant, 0, n+1)
	for _, t := range w.tenants {
		if len(top) == n && !before(t, top[n-1]) {
			continue
		}
		i := sort.Search(len(top), func(i int) bool { return before(t, top[i]) })
		top = append(top, nil)
		copy(top[i+1:], top[i:])
		top[i] = t
		if len(top) > n {
			top = top[:n]
		}
	}
	out := make([]TenantUse, 0, len(top))
	for _, t := range top {
		g := share(t.weight, limit, total)
		out = append(out, TenantUse{Tenant: t.name, Weight: t.weight, Guaranteed: g, Used: t.used, Borrowed: max(0, t.used-g)})
	}
	return out
}
