package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/redisdoor"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
	"github.com/throttlekit/throttlekit-go/sdk-go/vectors"
)

// The doors of the matrix: how a client reaches the decision.
const (
	doorGoService = "Go service"
	doorPyService = "Python service"
	doorGoDirect  = "Go direct Redis"
	doorPyDirect  = "Python direct Redis"
)

var matrixDoors = []string{doorGoService, doorPyService, doorGoDirect, doorPyDirect}

// matrixSuite is one replayable vector suite, bound to its policy.
type matrixSuite struct {
	name, policy, key string
	suite             vectors.Suite
	offset            int64
}

// cell counts one store × door.
type cell struct{ matched, run int }

type matrixReport struct {
	mu    sync.Mutex
	cells map[string]map[string]*cell
}

func (r *matrixReport) add(store, door string, matched bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cells[store] == nil {
		r.cells[store] = map[string]*cell{}
	}
	c := r.cells[store][door]
	if c == nil {
		c = &cell{}
		r.cells[store][door] = c
	}
	c.run++
	if matched {
		c.matched++
	}
}

func (r *matrixReport) table(stores []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| store (%s) | %s |\n|---|%s\n", harness.Source(), strings.Join(matrixDoors, " | "), strings.Repeat("---|", len(matrixDoors)))
	for _, s := range stores {
		fmt.Fprintf(&b, "| %s |", s)
		for _, d := range matrixDoors {
			if c := r.cells[s][d]; c != nil {
				fmt.Fprintf(&b, " %d/%d |", c.matched, c.run)
			} else {
				b.WriteString(" — |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func matrixStores() []string {
	if v := os.Getenv("THROTTLEKIT_MATRIX_STORES"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{harness.StoreMemory, harness.StoreRedis, harness.StoreCluster, harness.StorePostgres, harness.StoreDynamo}
}

// TestMatrix replays the golden vectors (and every THROTTLEKIT_VECTORS file)
// through every store × door — the service doors of both SDKs on a
// test-clock server, and on the Redis stores both SDKs' direct doors — and
// writes the matched/run table to THROTTLEKIT_MATRIX_REPORT (and the log).
// A mismatch names the suite, op, store, door and both decisions.
func TestMatrix(t *testing.T) {
	files := vectorFiles(t)
	var suites []matrixSuite
	for fi, f := range files {
		for si, s := range f.Suites {
			if s.Primitive == vectors.PrimitiveLease {
				continue
			}
			p := fmt.Sprintf("v%d-%d", fi, si)
			suites = append(suites, matrixSuite{name: s.Name, policy: p, key: s.Key, suite: s, offset: vectors.ReplayOffset(f, s)})
		}
	}
	cfg := harness.WriteFile(t, "matrix.yaml", policyYAML(files, "fleetBudget"))
	bin := harness.Binary(t, true)
	report := &matrixReport{cells: map[string]map[string]*cell{}}
	stores := matrixStores()
	started := time.Now()
	for _, kind := range stores {
		t.Run(kind, func(t *testing.T) {
			st := harness.Provision(t, kind)
			srv := harness.Start(t, bin, append([]string{"--config", cfg}, st.ServerArgs...)...)
			for _, door := range matrixDoors {
				direct := door == doorGoDirect || door == doorPyDirect
				if direct && len(st.RedisAddrs) == 0 {
					continue // a direct door needs Redis
				}
				got := replayDoor(t, door, srv.Addr, st, suites)
				for i, s := range suites {
					for j, op := range s.suite.Ops {
						want := op.Expect.Engine()
						want.ResetAt += s.offset
						ok := got[i][j] == want
						report.add(kind, door, ok)
						if !ok {
							t.Errorf("suite %s op %d (now=%d, units=%d), store %s, door %s: got %+v, want %+v",
								s.name, j, op.Now+s.offset, op.Units(), kind, door, got[i][j], want)
							if got[i][j].ResetAt == 0 {
								t.Errorf("(a fail-mode decision: the store failed) server log:\n%s", srv.Stderr())
							}
						}
					}
				}
			}
		})
	}
	table := report.table(stores)
	t.Logf("conformance matrix (%s, %s):\n%s", harness.Source(), time.Since(started).Round(time.Second), table)
	if path := os.Getenv("THROTTLEKIT_MATRIX_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// replayDoor returns each suite's decisions through one door.
func replayDoor(t *testing.T, door, addr string, st harness.Store, suites []matrixSuite) [][]engine.Decision {
	t.Helper()
	key := func(s matrixSuite) string { return s.key + "-" + strings.ReplaceAll(door, " ", "") }
	switch door {
	case doorGoService:
		c, err := throttlekit.NewClient(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		out := make([][]engine.Decision, len(suites))
		for i, s := range suites {
			for j, op := range s.suite.Ops {
				ctx := atNow(context.Background(), op.Now+s.offset)
				var d throttlekit.Decision
				if s.suite.Primitive == vectors.PrimitiveTokenBudget {
					d, err = c.Debit(ctx, s.policy, key(s), op.Units())
				} else {
					d, err = c.Check(ctx, s.policy, key(s), op.Units())
				}
				if err != nil {
					t.Fatalf("%s op %d through %s: %v", s.name, j, door, err)
				}
				if d.Synthesized {
					t.Fatalf("%s op %d through %s: a synthesized decision without a failure policy", s.name, j, door)
				}
				out[i] = append(out[i], engine.Decision{Allowed: d.Allowed, Limit: d.Limit, Remaining: d.Remaining, ResetAt: d.ResetAt, RetryAfterMs: d.RetryAfterMs})
			}
		}
		return out
	case doorGoDirect:
		var client redis.UniversalClient
		if st.Kind == harness.StoreCluster {
			client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: st.RedisAddrs})
		} else {
			client = redis.NewClient(&redis.Options{Addr: st.RedisAddrs[0]})
		}
		defer client.Close()
		out := make([][]engine.Decision, len(suites))
		for i, s := range suites {
			es, err := s.suite.Engine()
			if err != nil {
				t.Fatal(err)
			}
			d, err := redisdoor.New(client, es, s.policy)
			if err != nil {
				t.Fatal(err)
			}
			for j, op := range s.suite.Ops {
				got, err := d.CheckAt(context.Background(), key(s), op.Units(), op.Now+s.offset)
				if err != nil {
					t.Fatalf("%s op %d through %s: %v", s.name, j, door, err)
				}
				out[i] = append(out[i], got)
			}
		}
		return out
	}
	return replayPython(t, door, addr, st, suites, key)
}

// replayPython runs conformance/python/matrix_door.py with our throttlekit-py.
func replayPython(t *testing.T, door, addr string, st harness.Store, suites []matrixSuite, key func(matrixSuite) string) [][]engine.Decision {
	t.Helper()
	type op struct {
		Now   int64 `json:"now"`
		Units int64 `json:"units"`
	}
	type suite struct {
		Policy  string         `json:"policy"`
		Kind    string         `json:"kind"`
		Options map[string]any `json:"options"`
		Key     string         `json:"key"`
		Ops     []op           `json:"ops"`
	}
	job := map[string]any{"door": "service", "target": addr, "redis_addrs": st.RedisAddrs, "cluster": st.Kind == harness.StoreCluster}
	if door == doorPyDirect {
		job["door"] = "direct"
	}
	var ss []suite
	for _, s := range suites {
		js := suite{Policy: s.policy, Key: key(s)}
		if s.suite.Primitive == vectors.PrimitiveTokenBudget {
			js.Kind, js.Options = "tokenBudget", vectors.StrategySpec{Options: s.suite.Options}.All()
		} else {
			js.Kind, js.Options = s.suite.Strategy.Kind, s.suite.Strategy.All()
		}
		for _, o := range s.suite.Ops {
			js.Ops = append(js.Ops, op{Now: o.Now + s.offset, Units: o.Units()})
		}
		ss = append(ss, js)
	}
	job["suites"] = ss
	in, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	root := harness.RepoRoot(t)
	python := filepath.Join(root, ".tools", "pysdk", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("the Python SDK's venv (.tools/pysdk, made by the test command) is required: %v", err)
	}
	cmd := exec.Command(python, filepath.Join(root, "conformance", "python", "matrix_door.py"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", door, err, stderr.String())
	}
	var raw [][][5]int64
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("%s: %v: %s", door, err, out)
	}
	res := make([][]engine.Decision, len(raw))
	for i, s := range raw {
		for _, d := range s {
			res[i] = append(res[i], engine.Decision{Allowed: d[0] == 1, Limit: d[1], Remaining: d[2], ResetAt: d[3], RetryAfterMs: d[4]})
		}
	}
	if len(res) != len(suites) {
		t.Fatalf("%s answered %d suites of %d", door, len(res), len(suites))
	}
	return res
}

const livePolicies = `version: 1
limiters:
  burst: { strategy: gcra, limit: 5, period: 3650d, burst: 5 }
  shared: { strategy: gcra, limit: 12, period: 3650d, burst: 12, prefix: live-shared }
  checkout:
    concurrency: { minLimit: 8, maxLimit: 8 }
`

// TestMatrixLive runs the live checks on the real clock through every store:
// a cold burst, one budget shared by every door, exact caps across three
// servers, and a concurrency cap. It appends a store × check table to
// THROTTLEKIT_MATRIX_REPORT.
func TestMatrixLive(t *testing.T) {
	checks := []string{"cold burst", "one budget, every door", "exact across 3 servers", "concurrency cap"}
	results := map[string]map[string]string{}
	stores := matrixStores()
	for _, kind := range stores {
		results[kind] = map[string]string{}
		t.Run(kind, func(t *testing.T) {
			st := harness.Provision(t, kind)
			cfg := harness.WriteFile(t, "live.yaml", livePolicies)
			bin := harness.Binary(t, false)
			srv := harness.Start(t, bin, append([]string{"--config", cfg}, st.ServerArgs...)...)
			c := dialAll(t, []*harness.Server{srv})[0]
			run := func(name string, fn func(t *testing.T)) {
				if fn == nil {
					results[kind][name] = "—"
					return
				}
				results[kind][name] = "FAIL"
				if t.Run(name, fn) {
					results[kind][name] = "pass"
				}
			}
			run(checks[0], func(t *testing.T) {
				key := fmt.Sprint("cold-", time.Now().UnixNano())
				var got []bool
				for i := 0; i < 7; i++ {
					d, err := c.Check(context.Background(), "burst", key, 1)
					if err != nil {
						t.Fatal(err)
					}
					if d.ResetAt == 0 {
						t.Fatalf("a fail-mode decision (the store failed); server log:\n%s", srv.Stderr())
					}
					got = append(got, d.Allowed)
				}
				if fmt.Sprint(got) != "[true true true true true false false]" {
					t.Fatalf("a cold key of burst 5 answered %v", got)
				}
			})
			run(checks[1], func(t *testing.T) {
				key := fmt.Sprint("shared-", time.Now().UnixNano())
				admitted := 0
				for i := 0; i < 9; i++ {
					d := decided(t, srv, func() (throttlekit.Decision, error) { return c.Check(context.Background(), "shared", key, 1) })
					if d.Allowed {
						admitted++
					}
				}
				admitted += pySpend(t, map[string]any{"door": "spend", "target": srv.Addr, "policy": "shared", "key": key, "n": 9})
				if len(st.RedisAddrs) > 0 {
					g, _ := engine.NewGCRA(12, 3650*86_400_000, 12)
					var client redis.UniversalClient = redis.NewClient(&redis.Options{Addr: st.RedisAddrs[0]})
					if kind == harness.StoreCluster {
						client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: st.RedisAddrs})
					}
					defer client.Close()
					door, err := redisdoor.New(client, g, "live-shared")
					if err != nil {
						t.Fatal(err)
					}
					for i := 0; i < 9; i++ {
						d, err := door.Check(context.Background(), key, 1)
						if err != nil {
							t.Fatal(err)
						}
						if d.Allowed {
							admitted++
						}
					}
					admitted += pySpend(t, map[string]any{"door": "spend", "redis_addrs": st.RedisAddrs, "cluster": kind == harness.StoreCluster,
						"policy": "live-shared", "key": key, "n": 9, "gcra": map[string]int64{"limit": 12, "periodMs": 3650 * 86_400_000, "burst": 12}})
				}
				if admitted != 12 {
					t.Fatalf("%d admitted on one budget of 12 spent through every door; server log:\n%s", admitted, srv.Stderr())
				}
			})
			var exact, capped func(t *testing.T)
			if kind != harness.StoreMemory { // one server's memory is no shared store
				exact = func(t *testing.T) { exactAcrossServers(t, st.ServerArgs...) }
			}
			if len(st.RedisAddrs) > 0 {
				capped = func(t *testing.T) {
					fleet := harness.WriteFile(t, "fleet.yaml", distPolicies)
					var servers []*harness.Server
					for i := 0; i < 3; i++ {
						servers = append(servers, harness.Start(t, bin, append([]string{"--config", fleet, "--node-id", fmt.Sprint("node", i)}, st.ServerArgs...)...))
					}
					capHolds(t, dialAll(t, servers), "fleet-checkout", 8)
				}
			} else {
				capped = func(t *testing.T) { capHolds(t, []*throttlekit.Client{c}, "checkout", 8) }
			}
			run(checks[2], exact)
			run(checks[3], capped)
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| live check (%s) | %s |\n|---|%s\n", harness.Source(), strings.Join(checks, " | "), strings.Repeat("---|", len(checks)))
	for _, s := range stores {
		fmt.Fprintf(&b, "| %s |", s)
		for _, c := range checks {
			v := results[s][c]
			if v == "" {
				v = "not run"
			}
			fmt.Fprintf(&b, " %s |", v)
		}
		b.WriteString("\n")
	}
	t.Logf("live checks:%s", b.String())
	if path := os.Getenv("THROTTLEKIT_MATRIX_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(b.String()); err != nil {
			t.Fatal(err)
		}
	}
}

// decided makes one decision through the server, asking again (at most
// five times, each logged) while the answer is a fail-mode one: a store
// that did not answer decided nothing and spent nothing, and this check is
// about sharing a budget, not about outages (those have tests of their own).
func decided(t *testing.T, srv *harness.Server, call func() (throttlekit.Decision, error)) throttlekit.Decision {
	t.Helper()
	for try := 0; ; try++ {
		d, err := call()
		if err != nil {
			t.Fatal(err)
		}
		if d.ResetAt != 0 {
			return d
		}
		if try == 5 {
			t.Fatalf("six fail-mode decisions in a row: the store is not answering; server log:\n%s", srv.Stderr())
		}
		t.Logf("a fail-mode decision (the store did not answer); asking again. server log:\n%s", srv.Stderr())
	}
}

// pySpend runs a live spend through our Python SDK and returns how many
// units it was admitted.
func pySpend(t *testing.T, job map[string]any) int {
	t.Helper()
	in, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	root := harness.RepoRoot(t)
	cmd := exec.Command(filepath.Join(root, ".tools", "pysdk", "bin", "python"), filepath.Join(root, "conformance", "python", "matrix_door.py"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python spend: %v\n%s", err, stderr.String())
	}
	var n int
	if err := json.Unmarshal(out, &n); err != nil {
		t.Fatalf("python spend answered %q: %v", out, err)
	}
	return n
}
