package conformance

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/store/dynstore"
)

// Linearizability: counting admissions catches an over-admission only when
// the totals come out wrong; a lost spend hidden by a spare one elsewhere,
// or a decision made on a stale state, passes a count. These tests record
// every decision's invocation and response time, key, instant, cost and
// answer across concurrent callers on several servers, and check that some
// order of them consistent with real time is the engine applied one by one
// (porcupine does the search, the engine is the sequential model).

// linearPolicies deny often enough that every decision's answer matters.
// The sliding log's window outlasts the test: a denial may drop entries
// that aged out by its instant (the engine does; a store that writes
// nothing on a denial does not), which is the same to every later instant
// but not to an earlier one reaching the store after it — and concurrent
// requests' instants do reach it out of order. With no entry aging out,
// the two agree for any order.
const linearPolicies = `version: 1
limiters:
  gcra: { strategy: gcra, limit: 20, period: 1s }
  tokenBucket: { strategy: tokenBucket, capacity: 20, refillPerSec: 20 }
  fixedWindow: { strategy: fixedWindow, limit: 20, period: 1s }
  slidingWindow: { strategy: slidingWindow, limit: 20, period: 1s }
  slidingWindowLog: { strategy: slidingWindowLog, limit: 20, period: 1h }
`

type linearInput struct {
	policy, key string
	now, cost   int64
}

// linearState is a key's state as a store may hold it: the engine's state
// and the instant (epoch ms) it expires at.
type linearState struct {
	s        engine.State
	deadline int64
}

func sameLinearState(x, y linearState) bool {
	return x.deadline == y.deadline && x.s.Present == y.s.Present && x.s.V0 == y.s.V0 && x.s.V1 == y.s.V1 &&
		fmt.Sprint(x.s.Series) == fmt.Sprint(y.s.Series)
}

// linearModel is the engine as porcupine's sequential model: one
// partition per policy and key. Its state is every state a store may hold
// after the operations so far. Past its deadline a key's state may read as
// absent (the memory, Postgres and DynamoDB stores expire it at the
// request's instant) or still be held (Redis keys live on Redis's own
// clock, at least a minute for a request with its own instant): the two
// decide alike at every later instant, but not always at an earlier one
// that reaches the store after a later one — a sliding window keeps its
// past buckets, which the absent state does not have.
func linearModel(strategies map[string]engine.Strategy) porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			var order []string
			for _, op := range history {
				in := op.Input.(linearInput)
				id := in.policy + "/" + in.key
				if _, ok := by[id]; !ok {
					order = append(order, id)
				}
				by[id] = append(by[id], op)
			}
			out := make([][]porcupine.Operation, 0, len(order))
			for _, id := range order {
				out = append(out, by[id])
			}
			return out
		},
		Init: func() any { return []linearState{{}} },
		Step: func(state, input, output any) (bool, any) {
			in := input.(linearInput)
			var next []linearState
			keep := func(n linearState) {
				if !slices.ContainsFunc(next, func(x linearState) bool { return sameLinearState(x, n) }) {
					next = append(next, n)
				}
			}
			for _, held := range state.([]linearState) {
				reads := []engine.State{held.s}
				if held.s.Present && held.deadline <= in.now {
					reads = append(reads, engine.State{})
				}
				for i, read := range reads {
					s := read.Clone()
					d, ttl := strategies[in.policy].Check(&s, in.now, in.cost)
					switch {
					case d != output.(engine.Decision):
					case ttl > 0:
						keep(linearState{s, in.now + ttl})
					case i == 0:
						keep(linearState{s, held.deadline})
					default: // a denial of the state read as absent writes nothing
						keep(held)
					}
				}
			}
			return len(next) > 0, next
		},
		Equal: func(a, b any) bool {
			return slices.EqualFunc(a.([]linearState), b.([]linearState), sameLinearState)
		},
		DescribeOperation: func(input, output any) string {
			in, d := input.(linearInput), output.(engine.Decision)
			return fmt.Sprintf("%s %s now=%d cost=%d -> %+v", in.policy, in.key, in.now, in.cost, d)
		},
	}
}

// checkLinearizable drives servers (sharing one store) with concurrent
// callers and checks the recorded history against the engine. Each caller
// reads the next instant from one counter as it invokes, so instants rise
// with real time and concurrent calls may still reach the store out of
// order.
func checkLinearizable(t *testing.T, storeArgs ...string) {
	t.Helper()
	cfgPath := harness.WriteFile(t, "p.yaml", linearPolicies)
	cfg, err := config.Parse("p.yaml", []byte(linearPolicies))
	if err != nil {
		t.Fatal(err)
	}
	strategies := map[string]engine.Strategy{}
	var names []string
	for _, p := range cfg.Policies {
		strategies[p.Name] = p.Strategy
		names = append(names, p.Name)
	}
	bin := harness.Binary(t, true)
	servers := 3
	if len(storeArgs) == 0 {
		servers = 1 // the memory store is one process's
	}
	var procs []*harness.Server
	for range servers {
		procs = append(procs, harness.Start(t, bin, append([]string{"--config", cfgPath}, storeArgs...)...))
	}
	clients := dialAll(t, procs)
	// An hour ahead of the real clock: no store's expiry on real time can
	// overtake state written at these instants while the test runs.
	base := time.Now().Add(time.Hour).UnixMilli()
	var tick atomic.Int64
	origin := time.Now()
	const callers, perCaller = 16, 90
	ops := make([][]porcupine.Operation, callers)
	var wg sync.WaitGroup
	for w := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range perCaller {
				in := linearInput{policy: names[rng.IntN(len(names))], key: fmt.Sprint("k", rng.IntN(2)), cost: 1 + rng.Int64N(3)}
				call := time.Since(origin).Nanoseconds()
				in.now = base + 3*tick.Add(1)
				d, err := clients[(w+i)%servers].Check(atNow(context.Background(), in.now), in.policy, in.key, in.cost)
				ret := time.Since(origin).Nanoseconds()
				if err != nil {
					t.Error(err)
					return
				}
				if d.ResetAt == 0 {
					t.Errorf("a decision came from the fail mode: %+v", d)
					return
				}
				ops[w] = append(ops[w], porcupine.Operation{ClientId: w, Input: in, Call: call, Return: ret,
					Output: engine.Decision{Allowed: d.Allowed, Limit: d.Limit, Remaining: d.Remaining, ResetAt: d.ResetAt, RetryAfterMs: d.RetryAfterMs}})
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var history []porcupine.Operation
	allowed, denied := 0, 0
	for _, o := range ops {
		history = append(history, o...)
		for _, op := range o {
			if op.Output.(engine.Decision).Allowed {
				allowed++
			} else {
				denied++
			}
		}
	}
	if allowed == 0 || denied == 0 {
		t.Fatalf("%d allowed, %d denied: the history must have both to prove anything", allowed, denied)
	}
	res := porcupine.CheckOperationsTimeout(linearModel(strategies), history, 2*time.Minute)
	switch res {
	case porcupine.Ok:
		t.Logf("%d decisions (%d allowed, %d denied) across %d servers: linearizable", len(history), allowed, denied, servers)
	case porcupine.Unknown:
		t.Fatal("the linearizability check did not finish in time")
	default:
		// Name the keys whose histories no order explains.
		model := linearModel(strategies)
		var bad []string
		for _, part := range model.Partition(history) {
			if !porcupine.CheckOperations(model, part) {
				in := part[0].Input.(linearInput)
				bad = append(bad, in.policy+"/"+in.key)
				logOperations(t, model, part)
			}
		}
		t.Fatalf("the decisions of %d servers are not linearizable against the engine on %v", servers, bad)
	}
}

// logOperations logs a key's operations in the order they were invoked,
// for reading a history no order explains.
func logOperations(t *testing.T, model porcupine.Model, part []porcupine.Operation) {
	ops := slices.Clone(part)
	slices.SortFunc(ops, func(x, y porcupine.Operation) int { return cmp.Compare(x.Call, y.Call) })
	var b strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&b, "\n  client %2d  %9.3f–%9.3f ms  %s", op.ClientId, float64(op.Call)/1e6, float64(op.Return)/1e6, model.DescribeOperation(op.Input, op.Output))
	}
	t.Logf("%d operations, by invocation:%s", len(ops), b.String())
}

func TestLinearizableMemory(t *testing.T) { checkLinearizable(t) }

func TestLinearizableRedis(t *testing.T) {
	r := harness.StartRedis(t)
	checkLinearizable(t, "--redis", r.URL, "--redis-timeout", "30s")
}

func TestLinearizablePostgres(t *testing.T) {
	pg := harness.StartPostgres(t)
	checkLinearizable(t, "--postgres-url", pg.URL, "--postgres-prefix", "lin", "--postgres-timeout", "30s")
}

// On DynamoDB the puts also lose replies and land late (as in the
// exactness test), so the store's read-back resolution is in the history.
func TestLinearizableDynamo(t *testing.T) {
	d := harness.StartDynamo(t)
	if _, err := dynstore.New(context.Background(), dynstore.Options{Table: "linear", Endpoint: d.Endpoint, CreateTable: true}); err != nil {
		t.Fatal(err)
	}
	proxy := startBreakingProxy(t, strings.TrimPrefix(d.Endpoint, "http://"))
	proxy.chaos.Store(10)
	checkLinearizable(t, dynamoArgs(&harness.Dynamo{Endpoint: "http://" + proxy.ln.Addr().String()}, "linear")...)
}

// TestLinearCheckerCatchesWhatCountsMiss: two histories whose totals are
// right (one admission of a limit of one) but whose decisions no order of
// the engine gives — an admission after a denial that saw the unit spent,
// and a remaining count from a stale state — are refused; the same calls
// in an order the engine gives pass.
func TestLinearCheckerCatchesWhatCountsMiss(t *testing.T) {
	st, err := engine.NewFixedWindow(1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	model := linearModel(map[string]engine.Strategy{"p": st})
	in := func(now int64) linearInput { return linearInput{policy: "p", key: "k", now: now, cost: 1} }
	allow := engine.Decision{Allowed: true, Limit: 1, Remaining: 0, ResetAt: 1000}
	deny := engine.Decision{Allowed: false, Limit: 1, Remaining: 0, ResetAt: 1000, RetryAfterMs: 990}
	op := func(c int, now int64, call, ret int64, d engine.Decision) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: in(now), Call: call, Return: ret, Output: d}
	}
	good := []porcupine.Operation{op(0, 10, 0, 1, allow), op(1, 10, 2, 3, deny)}
	if !porcupine.CheckOperations(model, good) {
		t.Fatal("an allow then a deny, one after the other, was refused")
	}
	// The deny returned before the allow was invoked: the deny saw a spend
	// that had not happened yet.
	denyFirst := []porcupine.Operation{op(1, 10, 0, 1, deny), op(0, 10, 2, 3, allow)}
	if porcupine.CheckOperations(model, denyFirst) {
		t.Fatal("a deny that returned before the only allow began was accepted")
	}
	stale := engine.Decision{Allowed: false, Limit: 1, Remaining: 1, ResetAt: 1000, RetryAfterMs: 990}
	if porcupine.CheckOperations(model, []porcupine.Operation{op(0, 10, 0, 1, allow), op(1, 10, 2, 3, stale)}) {
		t.Fatal("a deny reporting a unit left after the unit was spent was accepted")
	}
}

// TestLinearModelAllowsExpiry: a sliding window's state read past its
// deadline may be absent (the memory, Postgres and DynamoDB stores) or
// still held (Redis); an earlier instant reaching the store after that
// read is then decided on the one or the other, and the model accepts
// both — but not a decision neither gives.
func TestLinearModelAllowsExpiry(t *testing.T) {
	st, err := engine.NewSlidingWindow(2, 1000, 10)
	if err != nil {
		t.Fatal(err)
	}
	model := linearModel(map[string]engine.Strategy{"p": st})
	op := func(c int, now, cost, call, ret int64, d engine.Decision) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: linearInput{policy: "p", key: "k", now: now, cost: cost}, Call: call, Return: ret, Output: d}
	}
	var held engine.State
	d1, ttl := st.Check(&held, 0, 2) // the window spent, kept ttl ms
	at := ttl + 100                  // past the deadline, in a bucket whose slot is not tick 0's
	fresh := engine.State{}
	d2, _ := st.Check(&fresh, at, 1) // read as absent
	kept := held.Clone()
	d2kept, _ := st.Check(&kept, at, 1) // or still held
	late := int64(950)                  // an earlier instant, after both
	d3, _ := st.Check(&fresh, late, 1)
	d3kept, _ := st.Check(&kept, late, 1)
	if d3 == d3kept {
		t.Fatalf("the absent and the held state decide alike at %d (%+v): the case proves nothing", late, d3)
	}
	for name, h := range map[string][]porcupine.Operation{
		"expired": {op(0, 0, 2, 0, 1, d1), op(1, at, 1, 2, 3, d2), op(2, late, 1, 4, 5, d3)},
		"held":    {op(0, 0, 2, 0, 1, d1), op(1, at, 1, 2, 3, d2kept), op(2, late, 1, 4, 5, d3kept)},
	} {
		if !porcupine.CheckOperations(model, h) {
			t.Errorf("%s: a store's history was refused", name)
		}
	}
	wrong := d3
	wrong.Remaining++
	if porcupine.CheckOperations(model, []porcupine.Operation{op(0, 0, 2, 0, 1, d1), op(1, at, 1, 2, 3, d2), op(2, late, 1, 4, 5, wrong)}) {
		t.Error("a decision neither the absent nor the held state gives was accepted")
	}
}
