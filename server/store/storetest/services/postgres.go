package services

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a PostgreSQL server started for a test (from Debian's
// packages), or the endpoint in THROTTLEKIT_POSTGRES_URL.
type Postgres struct {
	URL  string
	port int
	dir  string
	cmd  *exec.Cmd
}

// postgresBin finds the newest /usr/lib/postgresql/*/bin/NAME. A missing
// server fails the test: a required store is never silently skipped.
func postgresBin(t testing.TB, name string) string {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) == 0 {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		t.Fatalf("PostgreSQL's %s is not installed: install Debian's postgresql package (scripts/test.sh does), "+
			"or point THROTTLEKIT_POSTGRES_URL at a database to use", name)
	}
	sort.Strings(matches)
	return matches[len(matches)-1]
}

// asPostgresUser runs a PostgreSQL binary; as root it runs it as the
// postgres user, since the server refuses to run as root. It dies with the
// test process, so an interrupted run leaves no server behind.
func asPostgresUser(t testing.TB, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		uid, gid, home := postgresUser(t)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		cmd.Env = append(os.Environ(), "HOME="+home)
	}
	return cmd
}

// postgresUser is the postgres account, which a server started as root
// runs as.
func postgresUser(t testing.TB) (uid, gid int, home string) {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal("running as root needs the postgres user (Debian's postgresql package creates it)")
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, u.HomeDir
}

// StartPostgres returns a fresh database: THROTTLEKIT_POSTGRES_URL when
// set, else a throwaway cluster on a free loopback port, stopped at test end.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	if url := os.Getenv("THROTTLEKIT_POSTGRES_URL"); url != "" {
		return &Postgres{URL: url}
	}
	dir, err := os.MkdirTemp("", "tk-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		uid, gid, _ := postgresUser(t)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := asPostgresUser(t, postgresBin(t, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p := &Postgres{port: FreePort(t), dir: dir}
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	p.Start(t)
	t.Cleanup(p.Stop)
	return p
}

// Start (re)starts the server and waits until it accepts queries.
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(p.dir, "pg.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = asPostgresUser(t, postgresBin(t, "postgres"), "-D", filepath.Join(p.dir, "data"), "-p", strconv.Itoa(p.port),
		"-k", p.dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := PingPostgres(p.URL, time.Second)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(p.dir, "pg.log"))
			t.Fatalf("postgres did not accept connections: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down fast (SIGINT): its connections drop at once,
// and it can be restarted on its data.
func (p *Postgres) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.cmd = nil
}

// PingPostgres connects to url and pings it once, within timeout.
func PingPostgres(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return c.Ping(ctx)
}
