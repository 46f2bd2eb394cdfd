// Command throttlekit asks a throttlekit-server for decisions from a shell.
//
//	throttlekit [flags] check    POLICY KEY [N]       N checks (default 1), one line each
//	throttlekit [flags] peek     POLICY KEY           what a request would see, spending nothing
//	throttlekit [flags] forecast POLICY KEY [COST]    when COST-sized requests can proceed
//	throttlekit [flags] debit    POLICY KEY [TOKENS]  meter tokens against a token budget
//	throttlekit [flags] admit    POLICY KEY [COST]    take a concurrency slot, hold it for --hold, release it
//
// Flags may come before or after the command. Output is one line per
// decision, or one JSON object per line with --json (protojson names).
//
// Exit status: 0 when allowed (every check of N; a forecast with room now),
// 1 when denied, 2 on errors — so scripts can branch on it.
//
// Install with: go install github.com/throttlekit/throttlekit-go/sdk-go/cmd/throttlekit@latest
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// Exit statuses.
const (
	exitAllowed = 0
	exitDenied  = 1
	exitError   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	addr, tlsCA, tlsCert, tlsKey, secret string
	tls, json                            bool
	timeout, hold                        time.Duration
	cost                                 int64
}

const usage = `Usage: throttlekit [flags] COMMAND POLICY KEY [N]

Commands:
  check    POLICY KEY [N]       spend --cost units N times (default 1), one line per decision
  peek     POLICY KEY           what a cost-1 request would see now, spending nothing
  forecast POLICY KEY [COST]    how many COST-sized requests fit now, and when capacity returns
  debit    POLICY KEY [TOKENS]  meter TOKENS (default 1) against a token-budget policy
  admit    POLICY KEY [COST]    take a concurrency slot, hold it for --hold, then release it

Exit status: 0 allowed, 1 denied, 2 error.

Flags:
`

// run is the command; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("throttlekit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	addr := os.Getenv("THROTTLEKIT_ADDR")
	if addr == "" {
		addr = "localhost:50051"
	}
	fs.StringVar(&o.addr, "addr", addr, "server address, host:port (env THROTTLEKIT_ADDR)")
	fs.BoolVar(&o.tls, "tls", false, "use TLS, verifying the server against the system's roots")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "use TLS, verifying the server against this CA file (PEM)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "client certificate (PEM) for mTLS, with --tls-key")
	fs.StringVar(&o.tlsKey, "tls-key", "", "client certificate's key (PEM)")
	fs.StringVar(&o.secret, "secret", "", "decision-door secret (default env THROTTLEKIT_SECRET, which keeps it out of ps)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per decision (protojson names)")
	fs.DurationVar(&o.timeout, "timeout", throttlekit.DefaultTimeout, "deadline of each call")
	fs.DurationVar(&o.hold, "hold", time.Second, "admit: how long to hold the slot before releasing it")
	fs.Int64Var(&o.cost, "cost", 1, "check and admit: units each request spends")

	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitAllowed
		}
		return exitError // flag has printed the problem
	}
	if len(pos) < 3 {
		fmt.Fprintf(stderr, "throttlekit: want COMMAND POLICY KEY, got %d argument(s); see --help\n", len(pos))
		return exitError
	}
	if o.secret == "" {
		o.secret = os.Getenv("THROTTLEKIT_SECRET") // read here, not as the flag's default, which --help would print
	}
	cmd, policy, key, extra := pos[0], pos[1], pos[2], pos[3:]
	maxExtra := 1
	if cmd == "peek" {
		maxExtra = 0
	}
	if len(extra) > maxExtra {
		fmt.Fprintf(stderr, "throttlekit: %s takes at most %d argument(s) after POLICY KEY, got %q\n", cmd, maxExtra, extra)
		return exitError
	}
	n := int64(0)
	if len(extra) == 1 {
		if n, err = strconv.ParseInt(extra[0], 10, 64); err != nil || n < 1 {
			fmt.Fprintf(stderr, "throttlekit: %s: %q is not a positive whole number\n", cmd, extra[0])
			return exitError
		}
	}

	c, err := throttlekit.NewClient(o.addr, o.clientOptions()...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	defer c.Close()
	p := printer{w: stdout, json: o.json}

	switch cmd {
	case "check":
		return check(ctx, c, p, stderr, policy, key, o.cost, max(n, 1))
	case "peek":
		d, err := c.Peek(ctx, policy, key)
		if err != nil {
			return fail(stderr, err)
		}
		p.decision("peek", d)
		return verdict(d.Allowed)
	case "forecast":
		f, err := c.Forecast(ctx, policy, key, n)
		if err != nil {
			return fail(stderr, err)
		}
		p.forecast(f)
		return verdict(f.SpendableNow > 0)
	case "debit":
		d, err := c.Debit(ctx, policy, key, n)
		if err != nil {
			return fail(stderr, err)
		}
		p.decision("debit", d)
		return verdict(d.Allowed)
	case "admit":
		if n == 0 {
			n = o.cost
		}
		return admit(ctx, c, p, stderr, policy, key, n, o.hold)
	}
	fmt.Fprintf(stderr, "throttlekit: unknown command %q: want check, peek, forecast, debit or admit\n", cmd)
	return exitError
}

func (o options) clientOptions() []throttlekit.Option {
	opts := []throttlekit.Option{throttlekit.WithTimeout(o.timeout)}
	if o.tls {
		opts = append(opts, throttlekit.WithTLS(nil))
	}
	if o.tlsCA != "" {
		opts = append(opts, throttlekit.WithCAFile(o.tlsCA))
	}
	if o.tlsCert != "" || o.tlsKey != "" {
		opts = append(opts, throttlekit.WithClientCertificate(o.tlsCert, o.tlsKey))
	}
	if o.secret != "" {
		opts = append(opts, throttlekit.WithSecret(o.secret))
	}
	return opts
}

// parseInterspersed lets flags come before, between or after positional
// arguments (the flag package stops at the first positional one).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func check(ctx context.Context, c *throttlekit.Client, p printer, stderr io.Writer, policy, key string, cost, n int64) int {
	code := exitAllowed
	for i := int64(0); i < n; i++ {
		d, err := c.Check(ctx, policy, key, cost)
		if err != nil {
			return fail(stderr, err)
		}
		p.decision("check", d)
		if !d.Allowed {
			code = exitDenied
		}
	}
	return code
}

func admit(ctx context.Context, c *throttlekit.Client, p printer, stderr io.Writer, policy, key string, cost int64, hold time.Duration) (code int) {
	a, err := c.Admit(ctx, policy, key, cost, throttlekit.WithHeartbeat())
	if err != nil {
		return fail(stderr, err)
	}
	p.admission(a)
	if !a.Allowed() {
		return exitDenied
	}
	var dropped error
	defer func() {
		if err := a.Release(ctx, &dropped); err != nil {
			code = fail(stderr, err)
		}
	}()
	select {
	case <-time.After(hold):
	case <-a.Lost():
		fmt.Fprintln(stderr, "throttlekit: the server reclaimed the slot before --hold ended")
		return exitError
	case <-ctx.Done():
		dropped = ctx.Err() // interrupted: the work did not finish
		fmt.Fprintln(stderr, "throttlekit: interrupted; releasing the slot as dropped")
	}
	return exitAllowed
}

func verdict(allowed bool) int {
	if allowed {
		return exitAllowed
	}
	return exitDenied
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, err)
	if h := hint(err); h != "" {
		fmt.Fprintln(stderr, "throttlekit: hint:", h)
	}
	return exitError
}

// hint explains the transport errors whose gRPC text names the symptom,
// not the cause: plaintext spoken to a TLS port, and the reverse.
func hint(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "server preface"):
		return "the server closed the connection before speaking HTTP/2, as a TLS port does to plaintext: add --tls (or --tls-ca FILE)"
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "the server does not speak TLS on this port: drop --tls, --tls-ca and --tls-cert"
	}
	return ""
}

// printer writes decisions for people or, with json, for programs.
type printer struct {
	w    io.Writer
	json bool
}

func (p printer) decision(op string, d throttlekit.Decision) {
	if p.json {
		p.message(decisionProto(d))
		return
	}
	verdict := "allowed"
	if !d.Allowed {
		verdict = "denied "
	}
	line := fmt.Sprintf("%s %s limit=%d remaining=%d reset=%s", op, verdict, d.Limit, d.Remaining, stamp(d.ResetAt))
	if d.RetryAfterMs > 0 {
		line += fmt.Sprintf(" retry_after=%s", d.RetryAfter())
	}
	fmt.Fprintln(p.w, line)
}

func (p printer) forecast(f throttlekit.Forecast) {
	if p.json {
		p.message(&tkv1.Forecast{SpendableNow: f.SpendableNow, NextReplenishAt: f.NextReplenishAt, FullAt: f.FullAt})
		return
	}
	fmt.Fprintf(p.w, "forecast spendable_now=%d next_replenish=%s full=%s\n", f.SpendableNow, stamp(f.NextReplenishAt), stamp(f.FullAt))
}

func (p printer) admission(a *throttlekit.Admission) {
	if p.json {
		p.message(&tkv1.AdmitResponse{Decision: decisionProto(a.Decision), LeaseId: a.LeaseID,
			LeaseExpiresAt: a.LeaseExpiresAt, BindingAxis: string(a.BindingAxis), PolicyDenied: a.PolicyDenied})
		return
	}
	if !a.Allowed() {
		line := fmt.Sprintf("admit denied  axis=%s limit=%d remaining=%d", a.BindingAxis, a.Decision.Limit, a.Decision.Remaining)
		if a.Decision.RetryAfterMs > 0 {
			line += fmt.Sprintf(" retry_after=%s", a.Decision.RetryAfter())
		}
		fmt.Fprintln(p.w, line)
		return
	}
	fmt.Fprintf(p.w, "admit allowed lease=%s limit=%d remaining=%d\n", a.LeaseID, a.Decision.Limit, a.Decision.Remaining)
}

func (p printer) message(m proto.Message) {
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	fmt.Fprintln(p.w, string(b))
}

func decisionProto(d throttlekit.Decision) *tkv1.Decision {
	return &tkv1.Decision{Allowed: d.Allowed, Limit: d.Limit, Remaining: d.Remaining, ResetAt: d.ResetAt, RetryAfterMs: d.RetryAfterMs}
}

// stamp renders an epoch-ms instant in UTC; 0 is unknown.
func stamp(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}
