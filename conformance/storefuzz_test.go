package conformance

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
)

// Fuzzing the stores' decoders over real stores: random bytes are planted
// in real Redis keys, Postgres rows and DynamoDB items between decisions,
// and every decision must be the engine's on the state the key held, on a
// fresh state, or on what the store reads back of the planted bytes — never
// a panic, a store error (which the fail mode would answer) or a negative
// field. A short run is part of the test command; the long mode runs for
// THROTTLEKIT_FUZZ_STORES per store (e.g. 5m), seeded by
// THROTTLEKIT_FUZZ_SEED to reproduce a run.

// planter writes random bytes where a store keeps key's state.
type planter func(ctx context.Context, rng *rand.Rand, key store.Key, now int64) (planted string, err error)

func TestFuzzRedisStoreState(t *testing.T) {
	r := harness.StartRedis(t)
	s, err := redisstore.New(redisstore.Options{Targets: []string{r.URL}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := r.Client(t)
	fuzzStore(t, s, func(ctx context.Context, rng *rand.Rand, key store.Key, now int64) (string, error) {
		k := s.Key(key)
		if err := c.Del(ctx, k).Err(); err != nil {
			return "", err
		}
		field := []string{"s", "c", "t", "l", strconv.Itoa(rng.IntN(20)), randomText(rng, now)}[rng.IntN(6)]
		var cmd redis.Cmder
		switch rng.IntN(5) {
		case 0:
			cmd = c.Set(ctx, k, randomText(rng, now), 0)
		case 1:
			cmd = c.HSet(ctx, k, field, randomText(rng, now), []string{"s", "c", "t", "l"}[rng.IntN(4)], randomText(rng, now))
		case 2:
			cmd = c.ZAdd(ctx, k, redis.Z{Score: randomNumber(rng, now), Member: randomText(rng, now)})
		case 3:
			cmd = c.RPush(ctx, k, randomText(rng, now))
		default:
			cmd = c.SAdd(ctx, k, randomText(rng, now))
		}
		return fmt.Sprintf("%q", cmd.Args()), cmd.Err()
	})
}

func TestFuzzPostgresStoreState(t *testing.T) {
	s, conn := postgresWithConn(t, "fuzzed")
	fuzzStore(t, s, func(ctx context.Context, rng *rand.Rand, key store.Key, now int64) (string, error) {
		expires := []int64{now + rng.Int64N(1e7), now - rng.Int64N(1e4), math.MaxInt64, math.MinInt64, 0}[rng.IntN(5)]
		// A text column holds UTF-8 without NUL: anything else is refused by the database, not stored.
		text := strings.ReplaceAll(strings.ToValidUTF8(randomText(rng, now), "\uFFFD"), "\x00", "")
		_, err := conn.Exec(ctx, `INSERT INTO fuzzed (key, state, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (key) DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at`, s.Key(key), text, expires)
		return fmt.Sprintf("state %q expires_at %d", text, expires), err
	})
}

func TestFuzzDynamoStoreState(t *testing.T) {
	s, db := dynamoWithClient(t, "fuzzed")
	fuzzStore(t, s, func(ctx context.Context, rng *rand.Rand, key store.Key, now int64) (string, error) {
		attr := func() types.AttributeValue {
			if rng.IntN(3) == 0 {
				// A number attribute must hold a number DynamoDB accepts.
				return &types.AttributeValueMemberN{Value: strconv.FormatInt(rng.Int64N(1<<40)-(1<<39), 10)}
			}
			return &types.AttributeValueMemberS{Value: randomText(rng, now) + "x"} // never empty: DynamoDB refuses ""
		}
		item := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: s.Key(key)}}
		for _, name := range []string{"state", "version", "deadline_ms", "writes"} {
			if rng.IntN(5) > 0 {
				item[name] = attr()
			}
		}
		if rng.IntN(2) == 0 {
			item["deadline_ms"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(now+rng.Int64N(1e7), 10)}
		}
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("fuzzed"), Item: item})
		return fmt.Sprintf("%v", item), err
	})
}

// fuzzStore runs decisions on a few keys of random strategies, planting
// random state before some of them.
func fuzzStore(t *testing.T, s store.Store, plant planter) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("THROTTLEKIT_FUZZ_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("THROTTLEKIT_FUZZ_SEED=%q: %v", v, err)
		}
	}
	var until time.Time
	rounds := 300
	if v := os.Getenv("THROTTLEKIT_FUZZ_STORES"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("THROTTLEKIT_FUZZ_STORES=%q: %v", v, err)
		}
		until, rounds = time.Now().Add(d), math.MaxInt
	}
	t.Logf("seed %d (THROTTLEKIT_FUZZ_SEED to repeat)", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	ctx := context.Background()
	strategies := randomStrategies(t, rng, 2, 20, false)
	keys := make([]*keyState, 12)
	for i := range keys {
		keys[i] = &keyState{st: strategies[i%len(strategies)], key: store.Key{Prefix: fmt.Sprint("fz", seed%1000), ID: fmt.Sprint("k", i)}}
	}
	// Instants start far past the real clock (in 2096, the same every run,
	// so a seed repeats a run): the stores' own housekeeping (Postgres's
	// sweep, DynamoDB's TTL) works on the real clock and must not collect
	// state these instants hold live.
	now := int64(4_000_000_000_000)
	planted, decided := 0, 0
	for round := 0; round < rounds && (until.IsZero() || time.Now().Before(until)); round++ {
		ki := rng.IntN(len(keys))
		k := keys[ki]
		now += rng.Int64N(1500)
		if k.deadline != 0 && now >= k.deadline {
			// Expired: stores that expire lazily read it as absent, Redis
			// may still hold it (a replay's TTL floor); either decides alike.
			k.model, k.deadline, k.expired = engine.State{}, 0, true
		}
		if rng.IntN(3) == 0 {
			what, err := plant(ctx, rng, k.key, now)
			if err != nil {
				t.Fatalf("round %d: planting: %v", round, err)
			}
			k.poisoned, planted = true, planted+1
			k.note("round %d: planted at now=%d: %s", round, now, what)
			continue
		}
		cost := 1 + rng.Int64N(3)
		// The state the store holds, as it reads it: its Check must decide
		// on exactly this (or, for planted bytes, on a fresh state).
		pre, _, err := s.Load(ctx, k.st, k.key, now)
		if err != nil {
			t.Fatalf("round %d (seed %d): reading the state of %s failed: %v", round, seed, k.st.Kind(), err)
		}
		if !k.poisoned && !k.expired && !sameState(k.st, pre, k.model, now) {
			t.Fatalf("round %d (seed %d) key %d: %s holds %+v, but the last decision left %+v\nthe key's last operations:\n%s",
				round, seed, ki, k.st.Kind(), pre, k.model, strings.Join(k.history, "\n"))
		}
		d, err := s.Check(ctx, k.st, k.key, now, cost)
		if err != nil {
			t.Fatalf("round %d (seed %d): %s check failed (the fail mode would answer): %v", round, seed, k.st.Kind(), err)
		}
		if d.Limit < 0 || d.Remaining < 0 || d.ResetAt < 0 || d.RetryAfterMs < 0 {
			t.Fatalf("round %d (seed %d): %s decision with a negative field: %+v", round, seed, k.st.Kind(), d)
		}
		after, fresh := pre.Clone(), engine.State{}
		want, ttl := k.st.Check(&after, now, cost)
		wantFresh, freshTTL := k.st.Check(&fresh, now, cost)
		switch {
		case d == want:
		case k.poisoned && d == wantFresh:
			after, ttl = fresh, freshTTL
		default:
			t.Fatalf("round %d (seed %d) key %d: %s decided %+v at now=%d cost=%d; the engine on the state it holds %+v decides %+v (poisoned=%v)\nthe key's last operations:\n%s",
				round, seed, ki, k.st.Kind(), d, now, cost, pre, want, k.poisoned, strings.Join(k.history, "\n"))
		}
		// What the key holds now is what the next decision must find: the
		// engine's state after an allow; a denial writes nothing.
		k.model = pre
		if ttl > 0 {
			k.model = after
		}
		k.note("round %d: now=%d cost=%d decided %+v; state after %+v", round, now, cost, d, k.model)
		// Planted state that a denial left in place keeps its planted
		// expiry, which the test does not model: the key stays uncertain
		// until a decision writes it.
		k.poisoned, k.expired = k.poisoned && ttl == 0, false
		decided++
		// The next decision on this key may come after the state expired,
		// which every store reads as absent (the model does not expire).
		if ttl > 0 {
			k.deadline = now + ttl
		}
	}
	if decided < 50 || planted < 20 {
		t.Fatalf("only %d decisions and %d plantings", decided, planted)
	}
	t.Logf("%d decisions, %d plantings", decided, planted)
}

// keyState is what a fuzzed key holds, as far as the test knows.
type keyState struct {
	st       engine.Strategy
	key      store.Key
	model    engine.State
	poisoned bool
	deadline int64    // when the key's state expires (epoch ms)
	expired  bool     // it has since the last decision
	history  []string // the key's last operations, for a failure's message
}

// sameState reports whether two states decide alike at now: equal as
// stores keep them, or differing only in what no decision can see (a
// sliding log's entries that aged out, which Lua drops and the engine
// skips).
func sameState(st engine.Strategy, a, b engine.State, now int64) bool {
	ta, _ := a.MarshalText()
	tb, _ := b.MarshalText()
	if string(ta) == string(tb) {
		return true
	}
	if st.Peek(&a, now) != st.Peek(&b, now) {
		return false
	}
	for cost := int64(1); cost <= st.Limit()+1; cost++ {
		ca, cb := a.Clone(), b.Clone()
		da, _ := st.Check(&ca, now, cost)
		db, _ := st.Check(&cb, now, cost)
		if da != db {
			return false
		}
	}
	return true
}

func (k *keyState) note(format string, args ...any) {
	k.history = append(k.history, fmt.Sprintf(format, args...))
	if len(k.history) > 6 {
		k.history = k.history[1:]
	}
}

// randomText is text a store might hold: numbers of any size and form,
// instants near now, pairs and triples of them, or arbitrary bytes.
func randomText(rng *rand.Rand, now int64) string {
	num := func() string {
		switch rng.IntN(6) {
		case 0:
			return strconv.FormatFloat(randomNumber(rng, now), 'g', -1, 64)
		case 1:
			return []string{"inf", "-inf", "nan", "1e308", "-0", "0x10", " 5", "5 ", ""}[rng.IntN(9)]
		case 2:
			return strconv.FormatInt(now+rng.Int64N(2e5)-1e5, 10)
		default:
			return strconv.FormatInt(rng.Int64N(100)-10, 10)
		}
	}
	switch rng.IntN(5) {
	case 0:
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return string(b)
	case 1:
		return num()
	case 2:
		return num() + " " + num()
	default:
		return num() + " " + num() + " " + num()
	}
}

func randomNumber(rng *rand.Rand, now int64) float64 {
	switch rng.IntN(4) {
	case 0:
		return float64(now) + rng.Float64()*1e5 - 5e4
	case 1:
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)))
	case 2:
		return math.Inf(1 - 2*rng.IntN(2))
	default:
		return float64(rng.IntN(50))
	}
}
