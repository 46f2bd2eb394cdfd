package harness

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

// The store kinds of the conformance matrix.
const (
	StoreMemory   = "memory"
	StoreRedis    = "redis"
	StoreCluster  = "redis-cluster"
	StorePostgres = "postgres"
	StoreDynamo   = "dynamodb"
)

// Store is a provisioned state store: the flags that point a server at it
// (with deadlines generous enough for a loaded test machine: these tests
// pin decisions, not the fail mode), and, for the Redis stores, the
// addresses a direct door dials.
type Store struct {
	Kind       string
	ServerArgs []string
	// RedisAddrs are host:port of a Redis (one) or a Redis Cluster's masters.
	RedisAddrs []string
}

// Source says where stores come from: THROTTLEKIT_STORES=containers
// (testcontainers-go on the images THROTTLEKIT_*_IMAGE name), binaries
// (local processes, the default) or env (endpoints in THROTTLEKIT_*_URL).
func Source() string {
	switch s := os.Getenv("THROTTLEKIT_STORES"); s {
	case "containers", "env":
		return s
	}
	return "binaries"
}

// Provision provides a store of kind from Source(); it is gone when t ends.
func Provision(t *testing.T, kind string) Store {
	t.Helper()
	st := Store{Kind: kind}
	switch kind {
	case StoreMemory:
		return st
	case StoreRedis, StoreCluster, StorePostgres, StoreDynamo:
	default:
		t.Fatalf("unknown store %q", kind)
	}
	switch Source() {
	case "env":
		return fromEnv(t, st)
	case "containers":
		return fromContainers(t, st)
	}
	switch kind {
	case StoreRedis:
		r := StartRedis(t)
		st.RedisAddrs, st.ServerArgs = []string{r.Addr}, redisServerArgs(r.URL)
	case StoreCluster:
		c := StartCluster(t, 3)
		st.RedisAddrs, st.ServerArgs = c.Addrs, redisServerArgs("redis+cluster://"+strings.Join(c.Addrs, ","))
	case StorePostgres:
		st.ServerArgs = postgresServerArgs(StartPostgres(t).URL)
	case StoreDynamo:
		st.ServerArgs = dynamoServerArgs(StartDynamo(t).Endpoint)
	}
	return st
}

func dynamoServerArgs(endpoint string) []string {
	return []string{"--dynamodb-table", "matrix", "--dynamodb-endpoint", endpoint, "--dynamodb-create-table", "--dynamodb-region", "us-east-1",
		"--dynamodb-timeout", "60s", "--dynamodb-retries", "100000"}
}

func redisServerArgs(url string) []string { return []string{"--redis", url, "--redis-timeout", "5s"} }

func postgresServerArgs(url string) []string {
	return []string{"--postgres-url", url, "--postgres-timeout", "10s"}
}

// unavailable ends the test for a store that cannot be provisioned: a
// failure with THROTTLEKIT_CONFORMANCE_REQUIRE=all (the test command sets
// it), else a skip that the matrix reports — a user without, say, DynamoDB
// still gets the rest of the table.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("THROTTLEKIT_CONFORMANCE_REQUIRE") == "all" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (set THROTTLEKIT_CONFORMANCE_REQUIRE=all to fail instead)", args...)
}

func fromEnv(t *testing.T, st Store) Store {
	t.Helper()
	need := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			unavailable(t, "THROTTLEKIT_STORES=env needs %s for the %s store", name, st.Kind)
		}
		return v
	}
	switch st.Kind {
	case StoreRedis:
		u := need("THROTTLEKIT_REDIS_URL")
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatalf("THROTTLEKIT_REDIS_URL: %v", err)
		}
		st.ServerArgs, st.RedisAddrs = redisServerArgs(u), []string{parsed.Host}
	case StoreCluster:
		addrs := strings.Split(need("THROTTLEKIT_REDIS_CLUSTER"), ",")
		st.RedisAddrs, st.ServerArgs = addrs, redisServerArgs("redis+cluster://"+strings.Join(addrs, ","))
	case StorePostgres:
		st.ServerArgs = postgresServerArgs(need("THROTTLEKIT_POSTGRES_URL"))
	case StoreDynamo:
		if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
			fakeAWS(t) // a local endpoint; real AWS brings its own credentials
		}
		st.ServerArgs = dynamoServerArgs(need("THROTTLEKIT_DYNAMODB_ENDPOINT"))
	}
	return st
}

// image is THROTTLEKIT_<NAME>_IMAGE, else the official image a laptop pulls.
func image(name, official string) string {
	if v := os.Getenv("THROTTLEKIT_" + name + "_IMAGE"); v != "" {
		return v
	}
	return official
}

// run starts a container on the host network (every service binds
// 127.0.0.1 on a free port: test traffic never leaves loopback) and
// removes it when t ends, failed or not.
func run(t *testing.T, img string, entrypoint, cmd []string, env map[string]string, ready wait.Strategy) testcontainers.Container {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:              img,
			Entrypoint:         entrypoint,
			Cmd:                cmd,
			Env:                env,
			WaitingFor:         ready,
			HostConfigModifier: func(hc *container.HostConfig) { hc.NetworkMode = "host" },
			// testcontainers attaches every container to its default bridge
			// network as well; on the host network it must have none.
			EndpointSettingsModifier: func(eps map[string]*network.EndpointSettings) { clear(eps) },
		},
		Started: true,
		Logger:  tclog.TestLogger(t), // into the test's log: shown when it fails
	})
	if c != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.Terminate(ctx); err != nil {
				t.Errorf("remove container of %s: %v", img, err)
			}
		})
	}
	if err != nil {
		unavailable(t, "start %s: %v", img, err)
	}
	return c
}

func redisContainer(t *testing.T, extra ...string) (string, testcontainers.Container) {
	t.Helper()
	port := FreePort(t)
	cmd := append([]string{"redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, extra...)
	c := run(t, image("REDIS", "redis:7"), nil, cmd, nil, wait.ForLog("Ready to accept connections").WithStartupTimeout(2*time.Minute))
	return fmt.Sprintf("127.0.0.1:%d", port), c
}

// joinCluster makes masters of addrs into one cluster, with the redis-cli
// inside the first container (the host need not have one).
func joinCluster(t *testing.T, first testcontainers.Container, addrs []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := append(append([]string{"redis-cli", "--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	code, out, err := first.Exec(ctx, cmd)
	if err != nil || code != 0 {
		var b []byte
		if out != nil {
			b, _ = io.ReadAll(out)
		}
		t.Fatalf("redis-cli --cluster create: exit %d, %v\n%s", code, err, b)
	}
	waitClusterOK(t, addrs)
}

// waitPostgres waits until the database accepts a connection: an image may
// log "ready" once for a temporary server before its real one.
func waitPostgres(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := pingPostgres(url, 5*time.Second)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres at %s never accepted a connection: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func fromContainers(t *testing.T, st Store) Store {
	t.Helper()
	switch st.Kind {
	case StoreRedis:
		addr, _ := redisContainer(t)
		st.RedisAddrs, st.ServerArgs = []string{addr}, redisServerArgs("redis://"+addr)
	case StoreCluster:
		var addrs []string
		var first testcontainers.Container
		for i := 0; i < 3; i++ {
			addr, c := redisContainer(t, "--cluster-enabled", "yes", "--cluster-config-file", fmt.Sprintf("nodes-%d.conf", FreePort(t)),
				"--cluster-node-timeout", "5000", "--cluster-port", strconv.Itoa(FreePort(t)))
			addrs = append(addrs, addr)
			if first == nil {
				first = c
			}
		}
		joinCluster(t, first, addrs)
		st.RedisAddrs, st.ServerArgs = addrs, redisServerArgs("redis+cluster://"+strings.Join(addrs, ","))
	case StorePostgres:
		port := FreePort(t)
		// PGPORT and trust authentication serve both our image and the official one.
		run(t, image("POSTGRES", "postgres:16"), nil, nil,
			map[string]string{"PGPORT": strconv.Itoa(port), "POSTGRES_HOST_AUTH_METHOD": "trust"},
			wait.ForLog("database system is ready to accept connections").WithStartupTimeout(3*time.Minute))
		url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
		waitPostgres(t, url)
		st.ServerArgs = postgresServerArgs(url)
	case StoreDynamo:
		fakeAWS(t)
		port := FreePort(t)
		// moto_server where moto's own image keeps it (ours links it there).
		run(t, image("MOTO", "motoserver/moto:5.2.5"), []string{"/usr/local/bin/moto_server"},
			[]string{"-H", "127.0.0.1", "-p", strconv.Itoa(port)}, nil,
			wait.ForLog("Running on").WithStartupTimeout(2*time.Minute))
		st.ServerArgs = dynamoServerArgs(fmt.Sprintf("http://127.0.0.1:%d", port))
	}
	return st
}
