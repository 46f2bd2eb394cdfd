package services

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server process started for a test, or an endpoint given
// in THROTTLEKIT_REDIS_URL.
type Redis struct {
	Addr string
	URL  string
	cmd  *exec.Cmd
	dir  string
	args []string
}

// FreePort returns a loopback port that was free a moment ago, for a
// process the test starts to listen on. It is chosen below the kernel's
// ephemeral range when there is room: a port from that range (what
// listening on port 0 gives) can be taken as the source port of any
// outgoing connection before the process binds it, which on a busy suite
// happens. A port is handed out once per test binary.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi := belowEphemeral()
	for range 1000 {
		port := 0
		if hi > lo {
			port = lo + rand.IntN(hi-lo)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, given := handedOut.LoadOrStore(port, true); !given {
			return port
		}
	}
	t.Fatal("no free loopback port")
	return 0
}

// handedOut holds the ports FreePort returned in this process.
var handedOut sync.Map

// belowEphemeral is the range FreePort picks from: from 10000 to the start
// of the kernel's ephemeral ports, or an empty range (any free port) when
// that start is unknown or too low to leave a thousand.
func belowEphemeral() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, 0
	}
	start, err := strconv.Atoi(fields[0])
	if err != nil || start < 11000 {
		return 0, 0
	}
	return 10000, start
}

// redisServerBinary finds redis-server. A missing binary fails the test:
// a required store is never silently skipped.
func redisServerBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: install Debian's redis-server package (scripts/test.sh does), " +
			"or point THROTTLEKIT_REDIS_URL at a Redis to use")
	}
	return p
}

// StartRedis returns a fresh Redis: THROTTLEKIT_REDIS_URL when set (flushed
// first), else a redis-server on a free loopback port, stopped at test end.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	if url := os.Getenv("THROTTLEKIT_REDIS_URL"); url != "" && len(extra) == 0 {
		opt, err := redis.ParseURL(url)
		if err != nil {
			t.Fatalf("THROTTLEKIT_REDIS_URL: %v", err)
		}
		c := redis.NewClient(opt)
		defer c.Close()
		if err := c.FlushDB(context.Background()).Err(); err != nil {
			t.Fatalf("THROTTLEKIT_REDIS_URL %s: %v", url, err)
		}
		return &Redis{Addr: opt.Addr, URL: url}
	}
	port := FreePort(t)
	r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: t.TempDir()}
	r.URL = "redis://" + r.Addr
	r.args = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "no", "--loglevel", "warning"}, extra...)
	r.Start(t)
	t.Cleanup(r.Stop)
	return r
}

// Start (re)starts the server process on its port and waits for PING.
func (r *Redis) Start(t testing.TB) {
	t.Helper()
	r.cmd = exec.Command(redisServerBinary(t), r.args...)
	logf, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test process
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil || strings.HasPrefix(err.Error(), "NOAUTH") {
			return // answering (a password-protected server answers NOAUTH)
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer PING: %v", r.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server process (SIGKILL: an outage, not a shutdown).
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// Client returns a go-redis client for r, closed at test end.
func (r *Redis) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// Cluster is a Redis Cluster of masters started on loopback ports.
type Cluster struct {
	Addrs []string
	nodes []*Redis
}

// StartCluster starts n cluster-enabled redis-servers and joins them into a
// cluster of n masters with redis-cli --cluster create.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	cl := &Cluster{}
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		// The cluster bus listens on port + 10000 unless named: for a free
		// port above 55535 that is no port at all, and the node would not start.
		node := StartRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "5000", "--cluster-port", strconv.Itoa(FreePort(t)))
		cl.nodes = append(cl.nodes, node)
		cl.Addrs = append(cl.Addrs, node.Addr)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redis-cli is not installed (Debian's redis-tools)")
	}
	args := append([]string{"--cluster", "create"}, cl.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	WaitClusterOK(t, cl.Addrs)
	return cl
}

// Node returns the i-th master, to stop or pause it.
func (c *Cluster) Node(i int) *Redis { return c.nodes[i] }

// WaitClusterOK waits until every node of a new cluster reports
// cluster_state:ok with all 16384 slots assigned and every node known:
// asking one node is not enough, as the others may not have heard yet, and
// a decision routed to such a node meets CLUSTERDOWN.
func WaitClusterOK(t testing.TB, addrs []string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	want := []string{"cluster_state:ok", "cluster_slots_ok:16384", fmt.Sprintf("cluster_known_nodes:%d", len(addrs))}
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			ok := err == nil
			for _, w := range want {
				ok = ok && strings.Contains(info, w)
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				t.Fatalf("cluster node %s did not become ok: %v %s", addr, err, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.Close()
	}
}

// Pause freezes the server process (SIGSTOP): a stuck Redis that accepts
// nothing and answers nothing.
func (r *Redis) Pause() error { return r.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (r *Redis) Resume() error { return r.cmd.Process.Signal(syscall.SIGCONT) }

// Sleep holds Redis busy for seconds (DEBUG SLEEP; the server needs
// --enable-debug-command yes) and returns once it is: when it stops
// answering within 100ms. The channel delivers DEBUG SLEEP's result.
func (r *Redis) Sleep(t testing.TB, seconds int) <-chan error {
	t.Helper()
	ctx := context.Background()
	ctl := r.Client(t)
	asleep := make(chan error, 1)
	go func() { asleep <- ctl.Do(ctx, "DEBUG", "SLEEP", strconv.Itoa(seconds)).Err() }()
	probe := redis.NewClient(&redis.Options{Addr: r.Addr, ReadTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer probe.Close()
	for probe.Ping(ctx).Err() == nil {
		select {
		case err := <-asleep:
			t.Fatalf("DEBUG SLEEP ended before Redis was seen asleep: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return asleep
}

// StartSentinel starts a redis-server in sentinel mode monitoring master
// under the name masterName, and returns its address once it knows the master.
func StartSentinel(t testing.TB, master *Redis, masterName string) string {
	t.Helper()
	port := FreePort(t)
	dir := t.TempDir()
	host, mport, _ := strings.Cut(master.Addr, ":")
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 5000\n",
		port, dir, masterName, host, mport, masterName)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "sentinel.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(redisServerBinary(t), conf, "--sentinel")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
	defer sc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := sc.GetMasterAddrByName(context.Background(), masterName).Result()
		if err == nil && len(got) == 2 && got[0]+":"+got[1] == master.Addr {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel on %s does not know master %s: %v %v", addr, masterName, got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RedisClient returns a client with explicit credentials and database.
func RedisClient(addr, user, password string, db int) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, Username: user, Password: password, DB: db})
}
