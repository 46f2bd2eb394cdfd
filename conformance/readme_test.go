package conformance

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"
	yaml "go.yaml.in/yaml/v3"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/redisdoor"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

// exampleRedis is the Redis the direct-door example uses
// (TestRedisDoorExample starts one).
var exampleRedis = "127.0.0.1:6379"

// The Go direct door, as the README shows it: the shared Lua scripts on
// any go-redis client, no server in between.
func Example_redisDoor() {
	ctx, apiKey := context.Background(), "readme-alice"
	redisClient := redis.NewClient(&redis.Options{Addr: exampleRedis})
	defer redisClient.Close()
	g, _ := engine.NewGCRA(100, 60_000, 20)         // 100 per minute, bursts of 20
	api, _ := redisdoor.New(redisClient, g, "prod") // any go-redis client: single, cluster, ring
	d, err := api.Check(ctx, apiKey, 1)             // on the Redis server's clock
	if err != nil {
		panic(err)
	}
	p, _ := api.Peek(ctx, apiKey) // what the next request would see, spending nothing
	fmt.Println(d.Allowed, d.Remaining, p.Remaining, api.Key(apiKey))
}

func TestRedisDoorExample(t *testing.T) {
	exampleRedis = harness.StartRedis(t).Addr
	services.RunExample(t, Example_redisDoor, "true 19 19 prod:readme-alice")
}

// TestDocSnippetsAreExamples: every Go block of the README and docs/ is
// an excerpt of an Example function (line for line, indentation aside),
// so every snippet a reader copies compiles, and runs in the test command.
func TestDocSnippetsAreExamples(t *testing.T) {
	root := harness.RepoRoot(t)
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"), filepath.Join(root, "CONTRIBUTING.md"))
	var examples [][]string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			examples = append(examples, exampleBodies(t, path)...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(examples) < 10 {
		t.Fatalf("only %d Example functions found", len(examples))
	}
	blocks := 0
	for _, doc := range docs {
		for _, b := range goBlocks(t, doc) {
			blocks++
			if !excerpt(b.lines, examples) {
				t.Errorf("%s:%d: this Go block is not an excerpt of any Example function; make it one:\n%s",
					filepath.Base(doc), b.line, strings.Join(b.lines, "\n"))
			}
		}
	}
	if blocks < 3 {
		t.Fatalf("only %d Go blocks in the docs", blocks)
	}
}

type block struct {
	line  int
	lines []string
}

// goBlocks are the ```go blocks of a Markdown file, lines trimmed.
func goBlocks(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []block
	var cur *block
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = &block{line: n}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil && strings.TrimSpace(line) != "":
			cur.lines = append(cur.lines, strings.TrimSpace(line))
		}
	}
	return out
}

// exampleBodies are the Example functions of a test file, lines trimmed.
func exampleBodies(t *testing.T, path string) [][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	var cur []string
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "func Example"):
			in, cur = true, nil
		case in && line == "}":
			out, in = append(out, cur), false
		case in && strings.TrimSpace(line) != "":
			cur = append(cur, strings.TrimSpace(line))
		}
	}
	return out
}

// excerpt reports whether lines appear, in order and contiguous, in one of
// bodies.
func excerpt(lines []string, bodies [][]string) bool {
	for _, body := range bodies {
		for i := 0; i+len(lines) <= len(body); i++ {
			if fmt.Sprint(body[i:i+len(lines)]) == fmt.Sprint(lines) {
				return true
			}
		}
	}
	return false
}

// TestDocLinksResolve: every relative link of the README, CONTRIBUTING and
// docs/ names a file that exists (and a heading of it, for a #fragment).
func TestDocLinksResolve(t *testing.T) {
	root := harness.RepoRoot(t)
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"), filepath.Join(root, "CONTRIBUTING.md"))
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, doc := range docs {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(raw), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := doc
			if file != "" {
				path = filepath.Join(filepath.Dir(doc), file)
			}
			body, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%s: link %s: %v", filepath.Base(doc), target, err)
				continue
			}
			if frag != "" && !hasAnchor(string(body), frag) {
				t.Errorf("%s: link %s: no heading makes #%s", filepath.Base(doc), target, frag)
			}
		}
	}
}

// hasAnchor reports whether a heading of md renders as #frag (GitHub's
// rule: lower case, spaces to dashes, punctuation dropped).
func hasAnchor(md, frag string) bool {
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		if b.String() == frag {
			return true
		}
	}
	return false
}

// TestReadmeQuotaExample: the README's quota is a calendar-month quota in
// Berlin as the file says, and its period is a Berlin calendar month —
// February's shorter than October's, October's 25-hour DST day included.
func TestReadmeQuotaExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i := strings.Index(s, "## Quotas")
	if i < 0 {
		t.Fatal("README has no Quotas section")
	}
	s = s[i:]
	start := strings.Index(s, "```yaml\n")
	if start < 0 {
		t.Fatal("the Quotas section has no yaml block")
	}
	s = s[start+len("```yaml\n"):]
	cfg, err := config.Parse("README.md", []byte(s[:strings.Index(s, "```")]))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Policy("monthly")
	if p == nil {
		t.Fatal("the example has no policy monthly")
	}
	q, ok := p.Strategy.(engine.Quota)
	if !ok || q.Limit() != 1000 || q.Location() == nil || q.Location().String() != "Europe/Berlin" {
		t.Fatalf("monthly is %v, want a 1000 a month quota in Europe/Berlin", p.Strategy)
	}
	berlin := q.Location()
	for _, c := range []struct {
		at         time.Time
		start, end time.Time
	}{
		{time.Date(2027, 2, 14, 12, 0, 0, 0, berlin), time.Date(2027, 2, 1, 0, 0, 0, 0, berlin), time.Date(2027, 3, 1, 0, 0, 0, 0, berlin)},
		{time.Date(2027, 10, 31, 2, 30, 0, 0, berlin), time.Date(2027, 10, 1, 0, 0, 0, 0, berlin), time.Date(2027, 11, 1, 0, 0, 0, 0, berlin)},
	} {
		s, e := q.Period(c.at.UnixMilli())
		if s != c.start.UnixMilli() || e != c.end.UnixMilli() {
			t.Errorf("period of %v: [%d, %d), want [%v, %v)", c.at, s, e, c.start, c.end)
		}
	}
}

// TestReadmeFairExample: the README's LLM gateway is what it says — with
// search, support and batch active, 60,000, 20,000 and 20,000 tokens are
// guaranteed; a team alone borrows what no active team could still claim;
// the minute never admits more than 100,000 — through a real server.
func TestReadmeFairExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i := strings.Index(s, "## Fair shares")
	if i < 0 {
		t.Fatal("README has no Fair shares section")
	}
	s = s[i:]
	start := strings.Index(s, "```yaml\n")
	if start < 0 {
		t.Fatal("the Fair shares section has no yaml block")
	}
	s = s[start+len("```yaml\n"):]
	// A test-clock server: every check at one instant, so a minute's turn
	// during the test cannot start the window over.
	srv := harness.Start(t, harness.Binary(t, true), "--config", harness.WriteFile(t, "p.yaml", s[:strings.Index(s, "```")]))
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := atNow(context.Background(), fairT0+30_000)
	spend := func(team string, chunk int64, most int) int64 {
		var got int64
		for range most {
			d, err := c.Check(ctx, "llm-tokens", team, chunk)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Allowed {
				break
			}
			got += chunk
		}
		return got
	}
	// All three ask once: each holds its share from now on.
	for _, team := range []string{"search", "support", "batch"} {
		spend(team, 1, 1)
	}
	// batch, alone in spending, reaches its 20,000 and borrows what no
	// active team could still claim: a cost's worth at most.
	batch := 1 + spend("batch", 1000, 100)
	if batch < 20_000 || batch > 21_000 {
		t.Fatalf("batch got %d; want its 20,000 guaranteed and at most one chunk borrowed", batch)
	}
	search := 1 + spend("search", 1000, 100)
	support := 1 + spend("support", 1000, 100)
	if search < 59_000 || support < 19_000 {
		t.Fatalf("search got %d of its 60,000, support %d of its 20,000: a share was not kept", search, support)
	}
	// A fourth team (weight 1) is guaranteed nothing left and may borrow
	// nothing: the minute is spent.
	if total := batch + search + support + spend("research", 1, 1000); total > 100_000 {
		t.Fatalf("the minute admitted %d tokens of 100,000", total)
	}
}

// TestReadmePlanWorkflow: the README's pull-request gate is a real job — its
// last step is a `policy plan` command our server takes as it is (paths
// aside), failing (exit 1) on a candidate that denies what is allowed today
// and passing on one that does not.
func TestReadmePlanWorkflow(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i := strings.Index(s, "## Changing a limit safely")
	if i < 0 {
		t.Fatal("README has no Changing a limit safely section")
	}
	s = s[i:]
	start := strings.Index(s, "```yaml\n")
	s = s[start+len("```yaml\n"):]
	var wf struct {
		On   map[string]any `yaml:"on"`
		Jobs map[string]struct {
			Steps []struct {
				Run string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal([]byte(s[:strings.Index(s, "```")]), &wf); err != nil {
		t.Fatalf("the workflow is not YAML: %v", err)
	}
	steps := wf.Jobs["plan"].Steps
	if wf.On["pull_request"] == nil || len(steps) == 0 {
		t.Fatalf("the workflow: %+v", wf)
	}
	cmd := strings.Fields(steps[len(steps)-1].Run)
	if len(cmd) < 3 || cmd[0] != "throttlekit-server" || cmd[1] != "policy" || cmd[2] != "plan" {
		t.Fatalf("the last step is not a policy plan: %q", steps[len(steps)-1].Run)
	}
	current := harness.WriteFile(t, "current.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 3, windowMs: 1000 }\n")
	corpus := harness.WriteFile(t, "corpus.json", `{"api": {"version": 1, "steps": [{"key": "k", "cost": 1, "at": 1000}, {"key": "k", "cost": 1, "at": 1001}, {"key": "k", "cost": 1, "at": 1002}]}}`)
	for _, c := range []struct {
		limit, exit int
	}{{2, 1}, {5, 0}} {
		candidate := harness.WriteFile(t, "policies.yaml", fmt.Sprintf("version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: %d, windowMs: 1000 }\n", c.limit))
		args := make([]string, 0, len(cmd)-1)
		for _, a := range cmd[1:] {
			switch a {
			case "/tmp/current.yaml":
				a = current
			case "policies.yaml":
				a = candidate
			case "traffic/corpus.json":
				a = corpus
			}
			args = append(args, a)
		}
		code, out, errOut := harness.Run(t, harness.Binary(t, false), args...)
		if code != c.exit {
			t.Fatalf("candidate limit %d: exit %d, want %d\n%s%s", c.limit, code, c.exit, out, errOut)
		}
	}
}
