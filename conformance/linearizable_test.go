package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// linearModel is the engine as porcupine's sequential model: one
// partition per policy and key, the state an engine.State.
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
		Init: func() any { return engine.State{} },
		Step: func(state, input, output any) (bool, any) {
			in := input.(linearInput)
			s := state.(engine.State).Clone()
			d, _ := strategies[in.policy].Check(&s, in.now, in.cost)
			return d == output.(engine.Decision), s
		},
		Equal: func(a, b any) bool {
			x, y := a.(engine.State), b.(engine.State)
			return x.Present == y.Present && x.V0 == y.V0 && x.V1 == y.V1 && fmt.Sprint(x.Series) == fmt.Sprint(y.Series)
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
			}
		}
		t.Fatalf("the decisions of %d servers are not linearizable against the engine on %v", servers, bad)
	}
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
