package services

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/internal/testserver"
)

// Dynamo is a DynamoDB-compatible endpoint: moto (from the project's
// moto_server install) started on a free loopback port by moto_serve.py, or
// THROTTLEKIT_DYNAMODB_ENDPOINT.
type Dynamo struct {
	Endpoint string
	port     int
	dir      string
	opts     MotoOptions
	cmd      *exec.Cmd
}

// MotoOptions say how moto serves.
type MotoOptions struct {
	// Racy serves requests concurrently, as moto_server does: its
	// conditional writes are then not atomic (DynamoDB's are). By default
	// requests run one at a time.
	Racy bool
	// SwitchInterval is Python's thread switch interval (0: its default of
	// 5 ms). A short one makes rare interleavings common.
	SwitchInterval time.Duration
}

// motoServer finds moto_server: THROTTLEKIT_MOTO_SERVER, the project's
// .tools/moto virtualenv (scripts/install-services.sh), or PATH.
func motoServer(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("THROTTLEKIT_MOTO_SERVER"); p != "" {
		return p
	}
	if p := filepath.Join(testserver.RepoRoot(t), ".tools", "moto", "bin", "moto_server"); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath("moto_server"); err == nil {
		return p
	}
	t.Fatal("moto_server is not installed: run scripts/install-services.sh (pip install moto[server] into .tools/moto), " +
		"or point THROTTLEKIT_DYNAMODB_ENDPOINT at a DynamoDB-compatible endpoint")
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// StartDynamo returns an endpoint and sets the AWS credentials and region
// the SDK (in this process and in servers started after it) will use.
func StartDynamo(t testing.TB) *Dynamo {
	t.Helper()
	if ep := os.Getenv("THROTTLEKIT_DYNAMODB_ENDPOINT"); ep != "" {
		FakeAWS(t)
		return &Dynamo{Endpoint: ep}
	}
	// Every thread switch a microsecond apart: the store's own races show
	// on every run, while moto's are held off by serving one at a time.
	return StartMoto(t, MotoOptions{SwitchInterval: time.Microsecond})
}

// StartMoto starts moto as o says, on a free loopback port.
func StartMoto(t testing.TB, o MotoOptions) *Dynamo {
	t.Helper()
	FakeAWS(t)
	d := &Dynamo{port: FreePort(t), dir: t.TempDir(), opts: o}
	d.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", d.port)
	d.Start(t)
	t.Cleanup(d.Stop)
	return d
}

// Start (re)starts moto_server and waits until it answers.
func (d *Dynamo) Start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(d.dir, "moto.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// moto_server's own virtualenv runs moto_serve.py beside this file.
	python := filepath.Join(filepath.Dir(motoServer(t)), "python")
	args := []string{filepath.Join(testserver.RepoRoot(t), "server", "store", "storetest", "services", "moto_serve.py"), strconv.Itoa(d.port)}
	if !d.opts.Racy {
		args = append(args, "--serial")
	}
	if d.opts.SwitchInterval > 0 {
		args = append(args, "--switch-interval", strconv.FormatFloat(d.opts.SwitchInterval.Seconds(), 'g', -1, 64))
	}
	d.cmd = exec.Command(python, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	c := http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get(d.Endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(d.dir, "moto.log"))
			t.Fatalf("moto_server did not answer: %v\n%s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills moto_server (and its process group): an outage.
func (d *Dynamo) Stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	_ = d.cmd.Wait()
	d.cmd = nil
}

// FakeAWS gives this test (and the servers it starts) credentials for a
// local DynamoDB-compatible endpoint, and no instance-metadata lookups.
func FakeAWS(t testing.TB) {
	t.Setenv("AWS_ACCESS_KEY_ID", "throttlekit-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "throttlekit-test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}
