// Command throttlekit-lens draws ThrottleKit Lens, the terminal dashboard,
// for a remote throttlekit-server, through its Monitor door (snapshots)
// and its decision door (the Capacity tab's forecasts):
//
//	throttlekit-lens --addr host:port [--secret S] [--tls-ca F [--tls-cert F --tls-key F]]
//
// The Monitor door answers loopback callers only until the server has a
// --monitor-secret; pass it as --secret (or env THROTTLEKIT_MONITOR_SECRET).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
	"github.com/throttlekit/throttlekit-go/server/lens"
	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("throttlekit-lens", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:50051", "the server's address, host:port")
	secret := fs.String("secret", "", "the Monitor door's secret (default env THROTTLEKIT_MONITOR_SECRET)")
	doorSecret := fs.String("door-secret", "", "the decision door's secret, for forecasts (default env THROTTLEKIT_SECRET)")
	ca := fs.String("tls-ca", "", "use TLS, verifying the server against this CA file (PEM)")
	cert := fs.String("tls-cert", "", "client certificate (PEM) for mTLS, with --tls-key")
	key := fs.String("tls-key", "", "client certificate's key (PEM)")
	interval := fs.Duration("interval", time.Second, "how often to refresh")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "throttlekit-lens: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if f, ok := stdout.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		fmt.Fprintln(stderr, "throttlekit-lens: needs a terminal on stdout")
		return 2
	}
	if *secret == "" {
		*secret = os.Getenv("THROTTLEKIT_MONITOR_SECRET")
	}
	if *doorSecret == "" {
		*doorSecret = os.Getenv("THROTTLEKIT_SECRET")
	}
	var common []throttlekit.Option
	if *ca != "" {
		common = append(common, throttlekit.WithCAFile(*ca))
	}
	if *cert != "" || *key != "" {
		common = append(common, throttlekit.WithClientCertificate(*cert, *key))
	}
	mon, err := throttlekit.NewMonitor(*addr, append(common, throttlekit.WithSecret(*secret))...)
	if err != nil {
		fmt.Fprintln(stderr, "throttlekit-lens:", err)
		return 2
	}
	defer mon.Close()
	client, err := throttlekit.NewClient(*addr, append(common, throttlekit.WithSecret(*doorSecret))...)
	if err != nil {
		fmt.Fprintln(stderr, "throttlekit-lens:", err)
		return 2
	}
	defer client.Close()
	if err := lens.Run(ctx, lens.Remote{Monitor: mon, Client: client}, lens.Options{Title: *addr, Interval: *interval}); err != nil {
		fmt.Fprintln(stderr, "throttlekit-lens:", err)
		return 1
	}
	return 0
}
