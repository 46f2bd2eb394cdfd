package conformance

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/jackc/pgx/v5"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/dynstore"
	"github.com/throttlekit/throttlekit-go/server/store/pgstore"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
)

func mustStrategies() map[string]engine.Strategy {
	g, _ := engine.NewGCRA(5, 3_600_000, 5)
	tb, _ := engine.NewTokenBucket(5, 0.001)
	fw, _ := engine.NewFixedWindow(5, 3_600_000)
	sw, _ := engine.NewSlidingWindow(5, 3_600_000, 10)
	sl, _ := engine.NewSlidingWindowLog(5, 3_600_000)
	bu, _ := engine.NewTokenBudget(5, 3_600_000)
	return map[string]engine.Strategy{"gcra": g, "tokenBucket": tb, "fixedWindow": fw, "slidingWindow": sw, "slidingWindowLog": sl, "tokenBudget": bu}
}

// assertFresh checks that a poisoned key is decided as a fresh key (a real
// allow with a reset time, not a fail-mode decision) and keeps working:
// the second and later checks spend from the fresh budget.
func assertFresh(t *testing.T, s store.Store, st engine.Strategy, key store.Key) {
	t.Helper()
	ctx := context.Background()
	if st.Kind() != engine.KindTokenBudget { // a meter has no Peek
		if _, _, err := s.Load(ctx, st, key, 0); err != nil {
			t.Fatalf("Peek's read of a poisoned key failed: %v", err)
		}
	}
	d, err := s.Check(ctx, st, key, 0, 1)
	if err != nil {
		t.Fatalf("check of a poisoned key failed (an outage would let the fail mode decide it for ever): %v", err)
	}
	if !d.Allowed || d.ResetAt == 0 || d.RetryAfterMs < 0 {
		t.Fatalf("poisoned key decided %+v, want a fresh key's allow", d)
	}
	d2, err := s.Check(ctx, st, key, 0, 1)
	if err != nil || d2.Remaining >= d.Remaining && st.Kind() != engine.KindTokenBudget {
		t.Fatalf("after the reset the key does not spend: %+v then %+v (%v)", d, d2, err)
	}
}

// TestCorruptStateOnRedis: values no ThrottleKit wrote — another type,
// text, infinities, a far-future instant, a negative count — are reset and
// decided as a fresh key, on the server's Redis store.
func TestCorruptStateOnRedis(t *testing.T) {
	r := harness.StartRedis(t)
	s, err := redisstore.New(redisstore.Options{Targets: []string{r.URL}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := r.Client(t)
	ctx := context.Background()
	sts := mustStrategies()
	far := fmt.Sprint(time.Now().UnixMilli() + 10*365*86_400_000)
	// Values Lua's tonumber alone would read as an exhausted key (a space,
	// hex) but the state reader would not: the scripts now reset them too.
	exhausted := fmt.Sprint(time.Now().UnixMilli()+3_600_000, " ")
	window := fmt.Sprint(time.Now().UnixMilli() / 3_600_000 * 3_600_000)
	cases := []struct {
		strategy string
		poison   [][]any
	}{
		{"gcra", [][]any{{"SET", "K", "garbage"}}},
		{"gcra", [][]any{{"SET", "K", exhausted}}},
		{"fixedWindow", [][]any{{"HSET", "K", "s", window, "c", "0x5"}}},
		{"gcra", [][]any{{"SET", "K", "inf"}}},
		{"gcra", [][]any{{"SET", "K", "1e308"}}},
		{"gcra", [][]any{{"HSET", "K", "x", "1"}}},
		{"tokenBucket", [][]any{{"SET", "K", "garbage"}}},
		{"tokenBucket", [][]any{{"HSET", "K", "t", "-1e300", "l", "0"}}},
		{"tokenBucket", [][]any{{"HSET", "K", "t", "0", "l", far}}},
		{"fixedWindow", [][]any{{"SET", "K", "garbage"}}},
		{"fixedWindow", [][]any{{"HSET", "K", "s", "nan", "c", "1"}}},
		{"fixedWindow", [][]any{{"HSET", "K", "s", "0", "c", "-5"}}},
		{"slidingWindow", [][]any{{"SET", "K", "garbage"}}},
		{"slidingWindow", [][]any{{"HSET", "K", "3", "no-colon"}}},
		{"slidingWindow", [][]any{{"HSET", "K", "3", "5:-1e9"}}},
		{"slidingWindowLog", [][]any{{"SET", "K", "garbage"}}},
		{"slidingWindowLog", [][]any{{"ZADD", "K", far, "future"}}},
		{"slidingWindowLog", [][]any{{"ZADD", "K", "+inf", "forever"}}},
		{"tokenBudget", [][]any{{"SET", "K", "garbage"}}},
		{"tokenBudget", [][]any{{"HSET", "K", "s", "x", "c", "y"}}},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%s/%v", tc.strategy, tc.poison), func(t *testing.T) {
			key := store.Key{Prefix: "poison", ID: fmt.Sprint(i)}
			for _, cmd := range tc.poison {
				cmd = append([]any(nil), cmd...)
				cmd[1] = s.Key(key)
				if err := c.Do(ctx, cmd...).Err(); err != nil {
					t.Fatal(err)
				}
			}
			assertFresh(t, s, sts[tc.strategy], key)
			if ttl := c.PTTL(ctx, s.Key(key)).Val(); ttl <= 0 {
				t.Fatalf("the reset key has no time-to-live (%v): it would never go", ttl)
			}
		})
	}
	// The same poison in the middle of a CheckMany batch (the checks'
	// many-key scripts): the poisoned key is decided as its fresh
	// neighbours are, and its reset is logged (by a store of its own: the
	// log line is rate-limited per store).
	for i, tc := range cases {
		st := sts[tc.strategy]
		if st.Kind() == engine.KindTokenBudget { // a meter has no CheckMany
			continue
		}
		t.Run(fmt.Sprintf("many/%s/%v", tc.strategy, tc.poison), func(t *testing.T) {
			var logged lockedBuffer
			ms, err := redisstore.New(redisstore.Options{Targets: []string{r.URL}, Timeout: 5 * time.Second, Log: slog.New(slog.NewTextHandler(&logged, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer ms.Close()
			keys := []store.Key{{Prefix: "poison-many", ID: fmt.Sprint(i, "a")}, {Prefix: "poison-many", ID: fmt.Sprint(i, "b")}, {Prefix: "poison-many", ID: fmt.Sprint(i, "c")}}
			for _, cmd := range tc.poison {
				cmd = append([]any(nil), cmd...)
				cmd[1] = ms.Key(keys[1])
				if err := c.Do(ctx, cmd...).Err(); err != nil {
					t.Fatal(err)
				}
			}
			now := time.Now().UnixMilli()
			ds, err := ms.CheckMany(ctx, st, keys, now, 1)
			if err != nil {
				t.Fatalf("a batch with a poisoned key failed: %v", err)
			}
			if !ds[0].Allowed || ds[1] != ds[0] || ds[2] != ds[0] {
				t.Fatalf("decisions %+v: the poisoned key must be decided as its fresh neighbours", ds)
			}
			if !strings.Contains(logged.String(), ms.Key(keys[1])) {
				t.Fatalf("the reset of %s was not logged: %s", ms.Key(keys[1]), logged.String())
			}
		})
	}
}

// TestCorruptStateOnPostgres: a row whose state does not decode, or holds
// an impossible value, is reset and decided as a fresh key.
func TestCorruptStateOnPostgres(t *testing.T) {
	ctx := context.Background()
	s, conn := postgresWithConn(t, "poison")
	sts := mustStrategies()
	far := time.Now().UnixMilli() + 10*365*86_400_000
	for i, tc := range []struct{ strategy, text string }{
		{"gcra", "garbage"}, {"gcra", "inf 0"}, {"gcra", "1e308 0"}, {"tokenBucket", "-5 0"},
		{"fixedWindow", "0 -9"}, {"slidingWindowLog", fmt.Sprint("0 0 ", far)}, {"slidingWindow", "0 0 1"},
	} {
		key := store.Key{Prefix: "poison", ID: fmt.Sprint(i)}
		if _, err := conn.Exec(ctx, `INSERT INTO poison (key, state, expires_at) VALUES ($1, $2, $3)`, s.Key(key), tc.text, far); err != nil {
			t.Fatal(err)
		}
		t.Run(tc.strategy+"/"+tc.text, func(t *testing.T) { assertFresh(t, s, sts[tc.strategy], key) })
	}
}

// TestCorruptStateOnDynamoDB: an item with undecodable state, or with
// attributes of the wrong type (which would fail every compare-and-set),
// is replaced and the key decided as fresh.
func TestCorruptStateOnDynamoDB(t *testing.T) {
	ctx := context.Background()
	s, db := dynamoWithClient(t, "poison")
	far := fmt.Sprint(time.Now().UnixMilli() + 10*365*86_400_000)
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	str := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	sts := mustStrategies()
	for i, tc := range []struct {
		strategy string
		item     map[string]types.AttributeValue
	}{
		{"gcra", map[string]types.AttributeValue{"state": str("garbage"), "version": n("1"), "deadline_ms": n(far)}},
		{"gcra", map[string]types.AttributeValue{"state": str("1e308 0"), "version": n("1"), "deadline_ms": n(far)}},
		{"fixedWindow", map[string]types.AttributeValue{"state": str("0 1"), "version": str("one"), "deadline_ms": n(far)}},
		{"fixedWindow", map[string]types.AttributeValue{"state": n("5"), "version": n("1"), "deadline_ms": n(far)}},
	} {
		key := store.Key{Prefix: "poison", ID: fmt.Sprint(i)}
		tc.item["pk"] = str(s.Key(key))
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("poison"), Item: tc.item}); err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint(tc.strategy, i), func(t *testing.T) { assertFresh(t, s, sts[tc.strategy], key) })
	}
}

// postgresWithConn starts Postgres and returns the store on table and a
// plain connection to the same database, for writing what the store never
// would.
func postgresWithConn(t *testing.T, table string) (*pgstore.Store, *pgx.Conn) {
	t.Helper()
	pg := harness.StartPostgres(t)
	ctx := context.Background()
	s, err := pgstore.New(ctx, pgstore.Options{URL: pg.URL, Table: table, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return s, conn
}

// dynamoWithClient starts the DynamoDB emulator and returns the store on
// table and a plain client of the same endpoint.
func dynamoWithClient(t *testing.T, table string) (*dynstore.Store, *dynamodb.Client) {
	t.Helper()
	d := harness.StartDynamo(t)
	ctx := context.Background()
	s, err := dynstore.New(ctx, dynstore.Options{Table: table, Endpoint: d.Endpoint, CreateTable: true, Timeout: 30 * time.Second, Retries: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(d.Endpoint) })
}

// lockedBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
