package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/throttlekit/throttlekit-go/server/capture"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/plan"
)

// optionalInt is a flag given or not (a gate given as 0 still gates).
type optionalInt struct{ v *int }

func (o *optionalInt) String() string {
	if o == nil || o.v == nil {
		return ""
	}
	return strconv.Itoa(*o.v)
}

func (o *optionalInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("must be a whole number, 0 or more")
	}
	o.v = &n
	return nil
}

// policyCommand is `throttlekit-server policy plan …`: the plan of a
// candidate policy file on recorded traffic, as text or JSON, and its
// gates. Exit 0 when every gate holds, 1 when one fails (the plan is still
// printed), 2 on a usage or input error.
func policyCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "plan" {
		fmt.Fprintln(stderr, "usage: throttlekit-server policy plan --config CURRENT --candidate CANDIDATE (--corpus FILE | --from-capture) [--json] [--max-allow-deny N] [--max-deny-allow N] [--max-flips N] [--max-keys N] [--require-replayable]")
		return 2
	}
	fs := flag.NewFlagSet("throttlekit-server policy plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	current := fs.String("config", "", "the policy file in force (required)")
	candidate := fs.String("candidate", "", "the policy file proposed (required)")
	corpusPath := fs.String("corpus", "", "recorded traffic: a JSON object of policy name to a trace or a list of traces")
	fromCapture := fs.Bool("from-capture", false, "replay the capture of --config's capture block (the operator credential in "+capture.CredentialEnv+"; every segment read is audited)")
	asJSON := fs.Bool("json", false, "print the plan as one JSON object")
	var gates plan.Gates
	var maxAD, maxDA, maxFlips, maxKeys optionalInt
	fs.Var(&maxAD, "max-allow-deny", "fail (exit 1) when more than N decisions would turn from allowed to denied")
	fs.Var(&maxDA, "max-deny-allow", "fail when more than N decisions would turn from denied to allowed")
	fs.Var(&maxFlips, "max-flips", "fail when more than N decisions would flip, both ways")
	fs.Var(&maxKeys, "max-keys", "fail when flips would touch more than N keys")
	fs.BoolVar(&gates.RequireReplayable, "require-replayable", false, "fail when a policy of both files cannot be replayed (a kind block, a refused trace)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	gates.MaxAllowToDeny, gates.MaxDenyToAllow, gates.MaxFlips, gates.MaxKeys = maxAD.v, maxDA.v, maxFlips.v, maxKeys.v
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "throttlekit-server policy plan: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case *current == "" || *candidate == "":
		return usage("--config and --candidate are required")
	case (*corpusPath == "") == !*fromCapture:
		return usage("one of --corpus and --from-capture is required")
	}
	files := make([]plan.File, 2)
	for i, path := range []string{*current, *candidate} {
		raw, err := os.ReadFile(path)
		if err != nil {
			return usage("%v", err)
		}
		if files[i], err = plan.ParseFile(path, raw); err != nil {
			return usage("%v", err)
		}
	}
	var corpus *plan.Corpus
	if *fromCapture {
		op, _, err := operator(*current)
		if err != nil {
			return usage("--from-capture: %v", err)
		}
		traces, err := op.Export("")
		if err != nil {
			return usage("--from-capture: %v", err)
		}
		corpus = plan.NewCorpus()
		for name, ts := range traces {
			for _, t := range ts {
				corpus.Add(name, t)
			}
		}
		corpus.Sort()
	} else {
		raw, err := os.ReadFile(*corpusPath)
		if err != nil {
			return usage("%v", err)
		}
		if corpus, err = plan.ParseCorpus(raw); err != nil {
			return usage("%s: %v", *corpusPath, err)
		}
	}
	pl := plan.Make(files[0], files[1], corpus)
	failed := gates.Check(pl)
	write := plan.WriteText
	if *asJSON {
		write = plan.WriteJSON
	}
	if err := write(stdout, pl, failed); err != nil {
		return usage("%v", err)
	}
	if len(failed) > 0 {
		for _, f := range failed {
			fmt.Fprintln(stderr, "throttlekit-server policy plan: gate failed:", f)
		}
		return 1
	}
	return 0
}

// livePlanner is Lens's Plan tab with --plan-candidate: the recent arrivals
// of every policy kept (a tap), and the plan of the candidate — read again
// each time, so it may be edited while the server runs — on them against
// the generation in force. The candidate is read once now: a bad file
// stops the server as a bad policy file does. Without the flag, nothing.
func livePlanner(f *flags, current func() *door.Current) (func(context.Context) (*plan.Plan, error), *plan.Live, error) {
	if f.planCandidate == "" {
		return nil, nil, nil
	}
	read := func() (plan.File, error) {
		raw, err := os.ReadFile(f.planCandidate)
		if err != nil {
			return plan.File{}, fmt.Errorf("--plan-candidate: %w", err)
		}
		return plan.ParseFile(f.planCandidate, raw)
	}
	if _, err := read(); err != nil {
		return nil, nil, err
	}
	live := plan.NewLive(0)
	return func(context.Context) (*plan.Plan, error) {
		cand, err := read()
		if err != nil {
			return nil, err
		}
		cfg := current().Load().Config()
		return plan.Make(plan.File{Path: cfg.Path, Hash: "running", Cfg: cfg}, cand, live.Corpus()), nil
	}, live, nil
}
