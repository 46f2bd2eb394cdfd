package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
	"github.com/throttlekit/throttlekit-go/sdk-go/redisdoor"
)

// ecosystemScripts loads the check scripts the ecosystem's Python client
// ships (throttlekit-py 0.5.1, installed in .tools/pyclient), by strategy.
func ecosystemScripts(t *testing.T) map[string]struct {
	script *redis.Script
	argv   []string
} {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(harness.RepoRoot(t), ".tools", "pyclient", "lib", "python3*", "site-packages", "throttlekit", "_scripts"))
	if len(dirs) != 1 {
		t.Fatal("throttlekit-py's scripts are missing from .tools/pyclient: run scripts/install-services.sh")
	}
	raw, err := os.ReadFile(filepath.Join(dirs[0], "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Scripts []struct {
			Strategy, Role, File string
			Argv                 []string
		}
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]struct {
		script *redis.Script
		argv   []string
	}{}
	for _, s := range m.Scripts {
		if s.Role != "check" {
			continue
		}
		src, err := os.ReadFile(filepath.Join(dirs[0], s.File))
		if err != nil {
			t.Fatal(err)
		}
		out[s.Strategy] = struct {
			script *redis.Script
			argv   []string
		}{redis.NewScript(string(src)), s.Argv}
	}
	return out
}

// TestOurLuaEqualsTheEcosystemsLua replays seeded random traffic at real
// epochs through our scripts and through the scripts the ecosystem's client
// ships, on separate keys, and requires the same reply every time; then it
// alternates the two on one key, so each reads state the other wrote.
func TestOurLuaEqualsTheEcosystemsLua(t *testing.T) {
	theirs := ecosystemScripts(t)
	r := harness.StartRedis(t)
	client := r.Client(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, 26))
	strategies := randomStrategies(t, rng, 4, 40, false)
	total := 0
	for si, st := range strategies {
		eco, ok := theirs[string(st.Kind())]
		if !ok {
			t.Fatalf("the ecosystem ships no %s check script", st.Kind())
		}
		opts := luascripts.Options(st)
		ecoCall := func(key string, now, cost int64) []int64 {
			args := make([]any, len(eco.argv))
			for i, name := range eco.argv {
				switch name {
				case "now":
					args[i] = now
				case "cost":
					args[i] = cost
				default:
					args[i] = strconv.FormatFloat(opts[name], 'g', -1, 64)
				}
			}
			reply, err := eco.script.Run(ctx, client, []string{key}, args...).Int64Slice()
			if err != nil {
				t.Fatal(err)
			}
			return reply
		}
		ours, err := redisdoor.New(client, st, "")
		if err != nil {
			t.Fatal(err)
		}
		var sharedState engine.State // the engine's twin of the shared key
		now := int64(1_700_000_000_000) + rng.Int64N(1_000_000_000)
		for i := 0; i < 400; i++ {
			now += rng.Int64N(3 * st.Limit() * 10)
			cost := 1 + rng.Int64N(4)
			k := rng.IntN(2)
			// Separate keys: each script on its own state.
			a, err := ours.CheckAt(ctx, fmt.Sprintf("ours-%d-%d", si, k), cost, now)
			if err != nil {
				t.Fatal(err)
			}
			b, _, _ := luascripts.Reply(ecoCall(fmt.Sprintf("eco-%d-%d", si, k), now, cost))
			if a != b {
				t.Fatalf("%s op %d now=%d cost=%d: ours %+v, the ecosystem's %+v", st.Kind(), i, now, cost, a, b)
			}
			// One shared key, the two scripts taking turns: each reads the
			// state the other wrote, and both must match the engine's twin.
			shared := fmt.Sprintf("shared-%d", si)
			oursFirst := i%2 == 0
			for turn := 0; turn < 2; turn++ {
				var got engine.Decision
				if (turn == 0) == oursFirst {
					got, _ = ours.CheckAt(ctx, shared, cost, now)
				} else {
					got, _, _ = luascripts.Reply(ecoCall(shared, now, cost))
				}
				if want, _ := st.Check(&sharedState, now, cost); got != want {
					t.Fatalf("%s shared key op %d turn %d: %+v, engine %+v", st.Kind(), i, turn, got, want)
				}
			}
			total++
		}
		// The shared key must also read back through our state script.
		read, err := luascripts.Prepare(st, luascripts.RoleState)
		if err != nil {
			t.Fatal(err)
		}
		reply, err := read.Script.Redis.Run(ctx, client, []string{fmt.Sprintf("shared-%d", si)}, read.Args(now, 0)...).Slice()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := luascripts.ParseState(st, reply); err != nil {
			t.Fatalf("%s: state the ecosystem's script wrote does not parse with our layout: %v", st.Kind(), err)
		}
	}
	if total < 8000 {
		t.Fatalf("only %d ops", total)
	}
}
