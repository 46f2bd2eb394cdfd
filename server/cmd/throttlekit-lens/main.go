// Command throttlekit-lens draws ThrottleKit Lens, the terminal dashboard,
// for a remote throttlekit-server, through its Monitor door (snapshots)
// and its decision door (the Capacity tab's forecasts) — or for a fleet of
// them, merged into one view, with --server given once per server:
//
//	throttlekit-lens --addr host:port [--monitor-secret S] [--secret S] [--tls-ca F [--tls-cert F --tls-key F]]
//	throttlekit-lens --server A --server B --server C [the same options]
//
// The Monitor door answers loopback callers only until the server has a
// --monitor-secret; pass the same as --monitor-secret (or env
// THROTTLEKIT_MONITOR_SECRET). --secret is the decision door's, as for the
// server and the CLI.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
	"github.com/throttlekit/throttlekit-go/server/lens"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the parsed command line.
type options struct {
	addr, monitorSecret, secret string
	servers                     []string // --server, in order: a fleet
	ca, cert, key               string
	interval                    time.Duration
}

// addrs are the servers to read: every --server, else --addr.
func (o *options) addrs() []string {
	if len(o.servers) > 0 {
		return o.servers
	}
	return []string{o.addr}
}

// serverList is the repeatable --server flag.
type serverList struct{ dst *[]string }

func (l serverList) String() string {
	if l.dst == nil {
		return ""
	}
	return strings.Join(*l.dst, ",")
}

func (l serverList) Set(v string) error {
	if v == "" {
		return fmt.Errorf("a server's address must not be empty")
	}
	if slices.Contains(*l.dst, v) {
		return fmt.Errorf("%s is named twice", v)
	}
	*l.dst = append(*l.dst, v)
	return nil
}

// parse reads the command line, secrets defaulting to the environment; a
// non-zero code means stop with it (0 after --help).
func parse(args []string, stderr io.Writer) (*options, int) {
	o := &options{}
	fs := flag.NewFlagSet("throttlekit-lens", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "localhost:50051", "the server's address, host:port")
	fs.Var(serverList{&o.servers}, "server", "a server of the fleet, host:port; repeat it for each (a fleet is shown as one: decisions summed, latency merged, top keys merged, each server's health in the Servers tab)")
	// The names are the server's and the CLI's: --secret is the decision
	// door's everywhere, --monitor-secret the Monitor door's.
	fs.StringVar(&o.monitorSecret, "monitor-secret", "", "the Monitor door's secret (default env THROTTLEKIT_MONITOR_SECRET)")
	fs.StringVar(&o.secret, "secret", "", "the decision door's secret, for forecasts (default env THROTTLEKIT_SECRET)")
	fs.StringVar(&o.secret, "door-secret", "", "the former name of --secret")
	fs.StringVar(&o.ca, "tls-ca", "", "use TLS, verifying the server against this CA file (PEM)")
	fs.StringVar(&o.cert, "tls-cert", "", "client certificate (PEM) for mTLS, with --tls-key")
	fs.StringVar(&o.key, "tls-key", "", "client certificate's key (PEM)")
	fs.DurationVar(&o.interval, "interval", time.Second, "how often to refresh")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil, -1
		}
		return nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "throttlekit-lens: unexpected argument %q\n", fs.Arg(0))
		return nil, 2
	}
	if o.monitorSecret == "" {
		o.monitorSecret = os.Getenv("THROTTLEKIT_MONITOR_SECRET")
	}
	if o.secret == "" {
		o.secret = os.Getenv("THROTTLEKIT_SECRET")
	}
	return o, 0
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, code := parse(args, stderr)
	switch {
	case code == -1:
		return 0
	case code != 0:
		return code
	}
	if f, ok := stdout.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		fmt.Fprintln(stderr, "throttlekit-lens: needs a terminal on stdout")
		return 2
	}
	var common []throttlekit.Option
	if o.ca != "" {
		common = append(common, throttlekit.WithCAFile(o.ca))
	}
	if o.cert != "" || o.key != "" {
		common = append(common, throttlekit.WithClientCertificate(o.cert, o.key))
	}
	var fleet lens.Fleet
	for _, addr := range o.addrs() {
		mon, err := throttlekit.NewMonitor(addr, append(common, throttlekit.WithSecret(o.monitorSecret))...)
		if err != nil {
			fmt.Fprintln(stderr, "throttlekit-lens:", err)
			return 2
		}
		defer mon.Close()
		client, err := throttlekit.NewClient(addr, append(common, throttlekit.WithSecret(o.secret))...)
		if err != nil {
			fmt.Fprintln(stderr, "throttlekit-lens:", err)
			return 2
		}
		defer client.Close()
		fleet.Members = append(fleet.Members, lens.Member{Addr: addr, Source: lens.Remote{Monitor: mon, Client: client}, Health: mon.Health})
	}
	title := strings.Join(o.addrs(), ", ")
	if len(fleet.Members) > 1 {
		title = fmt.Sprintf("%d servers", len(fleet.Members))
	}
	if err := lens.Run(ctx, fleet, lens.Options{Title: title, Interval: o.interval}); err != nil {
		fmt.Fprintln(stderr, "throttlekit-lens:", err)
		return 1
	}
	return 0
}
