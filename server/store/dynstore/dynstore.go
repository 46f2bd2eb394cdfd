// Package dynstore keeps state in DynamoDB: one item per key (pk), the
// engine's state as text, a numeric version for compare-and-set (the first
// write conditioned on attribute_not_exists), expires_at in epoch seconds
// for DynamoDB's native TTL and deadline_ms checked on every read, since
// native TTL deletes lazily.
//
// DynamoDB has no clock a conditional write can read, so decisions use the
// server's clock: every server sharing a table must keep its clock in sync
// (NTP); a server whose clock runs ahead sees windows end early and admits
// more than the limit on a shared key (a test pins this).
package dynstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/keyspace"
	"github.com/throttlekit/throttlekit-go/server/ratelog"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/keybatch"
)

var _ store.Store = (*Store)(nil)

// Defaults.
const (
	DefaultTimeout = 500 * time.Millisecond
	DefaultRetries = 32
)

// Options configures a Store.
type Options struct {
	// Table holds the state (required).
	Table string
	// Region is the AWS region (default: AWS_REGION, else the SDK's chain).
	Region string
	// Endpoint is the DynamoDB API's address (default: AWS's; e.g. a local
	// DynamoDB-compatible server).
	Endpoint string
	// Prefix is the store-wide key prefix (default none).
	Prefix string
	// CreateTable creates the table when absent (default false).
	CreateTable bool
	// Timeout bounds each decision, retries included (default
	// DefaultTimeout).
	Timeout time.Duration
	// Retries is the compare-and-set attempts on a contended key before
	// the fail mode decides (default DefaultRetries).
	Retries int
	// Log receives the store's warnings (default slog.Default()).
	Log *slog.Logger
}

// Store is the DynamoDB store.
type Store struct {
	db      *dynamodb.Client
	table   string
	prefix  string
	warn    *ratelog.Limiter
	timeout time.Duration
	retries int
	group   *keybatch.Group
}

// New builds the client and, with CreateTable, creates the table
// (partition key pk, on demand) and enables TTL on expires_at.
func New(ctx context.Context, o Options) (*Store, error) {
	if o.Table == "" {
		return nil, errors.New("dynamodb: a table name is required")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Retries <= 0 {
		o.Retries = DefaultRetries
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	var opts []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, awsconfig.WithRegion(o.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("dynamodb: aws config: %w", err)
	}
	db := dynamodb.NewFromConfig(cfg, func(c *dynamodb.Options) {
		if o.Endpoint != "" {
			c.BaseEndpoint = aws.String(o.Endpoint)
		}
		// Lost compare-and-sets and failed reads are retried here, within
		// the decision's deadline; the SDK's own retries would retry puts.
		c.RetryMaxAttempts = 1
	})
	s := &Store{db: db, table: o.Table, prefix: o.Prefix, timeout: o.Timeout, retries: o.Retries, warn: ratelog.New(o.Log, 0)}
	s.group = keybatch.New(s.apply)
	if o.CreateTable {
		if err := s.createTable(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) createTable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
	var missing *types.ResourceNotFoundException
	if err == nil {
		return nil
	}
	if !errors.As(err, &missing) {
		return fmt.Errorf("dynamodb: describe table %s: %w", s.table, err)
	}
	_, err = s.db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            &s.table,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		return fmt.Errorf("dynamodb: create table %s: %w", s.table, err)
	}
	if err := dynamodb.NewTableExistsWaiter(s.db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: &s.table}, 25*time.Second); err != nil {
		return fmt.Errorf("dynamodb: table %s did not become active: %w", s.table, err)
	}
	_, err = s.db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: &s.table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("expires_at"), Enabled: aws.Bool(true)}})
	if err != nil {
		return fmt.Errorf("dynamodb: enable ttl on %s: %w", s.table, err)
	}
	return nil
}

// Key is the item key of k: storePrefix:prefix:id.
func (s *Store) Key(k store.Key) string {
	return keyspace.Join(s.prefix, k.String())
}

func unavailable(op string, err error) error {
	return fmt.Errorf("dynamodb %s: %w: %w", op, store.ErrUnavailable, err)
}

// item is a decoded item: the state (absent if expired), its version, and
// whether the item exists at all (for the first-write condition).
type item struct {
	state    engine.State
	version  int64
	exists   bool
	deadline int64    // epoch ms after which the state reads as absent
	writes   []string // ids of the latest writes, oldest first (see put)
}

// readAttempts bounds the tries of one read.
const readAttempts = 3

func (s *Store) get(ctx context.Context, st engine.Strategy, pk string, now int64) (item, error) {
	raw, err := s.read(ctx, pk)
	if err != nil {
		return item{}, err
	}
	if raw == nil {
		return item{}, nil
	}
	it, corrupt := decodeItem(st, raw, now)
	if corrupt != nil {
		// An item this store did not write (or a damaged one) would fail
		// every compare-and-set or decide wrongly for ever: it goes, and the
		// key is decided as new (a concurrent writer may lose one spend).
		s.warn.Warn(store.CorruptMsg, "key", pk, "err", corrupt)
		// Deleting is idempotent: a connection dropped under it is tried
		// again, like a read.
		del := &dynamodb.DeleteItemInput{
			TableName: &s.table,
			Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}},
		}
		for attempt := 0; ; attempt++ {
			_, err := s.db.DeleteItem(ctx, del)
			if err == nil {
				return item{}, nil
			}
			if attempt == readAttempts-1 || ctx.Err() != nil {
				return item{}, err
			}
		}
	}
	return it, nil
}

// read is one consistent read of an item (nil when there is none). A read
// has no effect, so a failed one (a connection the endpoint closed under
// it, a 5xx) is tried again, within the decision's deadline, before the
// fail mode decides. Writes are never retried blindly: a put whose reply
// was lost may have spent already (see put).
func (s *Store) read(ctx context.Context, pk string) (map[string]types.AttributeValue, error) {
	in := &dynamodb.GetItemInput{
		TableName: &s.table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}},
	}
	var out *dynamodb.GetItemOutput
	var err error
	for attempt := 0; attempt < readAttempts; attempt++ {
		if out, err = s.db.GetItem(ctx, in); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

// decodeItem reads an item's version, deadline and state (absent once the
// deadline has passed); corrupt says what is wrong with an item that does
// not decode.
func decodeItem(st engine.Strategy, raw map[string]types.AttributeValue, now int64) (it item, corrupt error) {
	num := func(name string) (int64, error) {
		v, ok := raw[name].(*types.AttributeValueMemberN)
		if !ok {
			return 0, fmt.Errorf("attribute %s is missing or not a number: %w", name, engine.ErrCorrupt)
		}
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("attribute %s: %w: %w", name, engine.ErrCorrupt, err)
		}
		return n, nil
	}
	it.exists = true
	_, it.writes = writeHistory(raw)
	var err error
	if it.version, err = num("version"); err != nil {
		return item{}, err
	}
	deadline, err := num("deadline_ms")
	if err != nil {
		return item{}, err
	}
	it.deadline = deadline
	text, ok := raw["state"].(*types.AttributeValueMemberS)
	if !ok {
		return item{}, fmt.Errorf("attribute state is missing or not a string: %w", engine.ErrCorrupt)
	}
	if deadline > now {
		if it.state, err = store.Decode(st, []byte(text.Value), now); err != nil {
			return item{}, err
		}
	}
	return it, nil
}

// Check implements store.Store: read, decide, conditional put, retried
// with jitter on a lost race, and the fail mode once retries run out.
// Concurrent decisions on one key share one read and one put (see
// keybatch), so compare-and-sets race between servers, not requests.
func (s *Store) Check(ctx context.Context, st engine.Strategy, key store.Key, now, cost int64) (engine.Decision, error) {
	return s.group.Check(ctx, st, s.Key(key), now, cost)
}

// apply is the store's read-decide-write of one key (keybatch.Apply).
func (s *Store) apply(ctx context.Context, st engine.Strategy, pk string, now int64, decide keybatch.Run) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	explicit := now != 0
	for attempt := 0; attempt < s.retries; attempt++ {
		if !explicit {
			now = time.Now().UnixMilli()
		}
		it, err := s.get(ctx, st, pk, now)
		if err != nil {
			return unavailable("get", err)
		}
		deadline, write := decide(&it.state, now)
		if !write {
			return nil // a batch of denials writes nothing
		}
		if deadline == keepDeadline {
			deadline = it.deadline
		}
		landed, err := s.put(ctx, pk, it, deadline)
		if err != nil {
			return err
		}
		if landed {
			return nil
		}
		// Another server wrote first: back off a little, with jitter, and
		// decide again on the fresh state.
		backoff := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return unavailable("put", ctx.Err())
		}
	}
	return unavailable("put", fmt.Errorf("%d compare-and-set attempts lost to concurrent writers", s.retries))
}

// keepDeadline is what a decide passed to apply answers to keep the item's
// deadline (a refund never extends how long state is kept).
const keepDeadline = -1

// recentWrites is how many write ids an item keeps: a put whose outcome
// is unknown is resolved by reading the item back, and while fewer than
// this many writes have followed it, its id is there if and only if it
// landed.
const recentWrites = 8

// put writes it's new state on condition that the item is still the
// version read. landed is false when another writer got there first; an
// unknown outcome is settled by reading the item back (sendSettled).
func (s *Store) put(ctx context.Context, pk string, it item, deadline int64) (landed bool, err error) {
	id := strconv.FormatUint(rand.Uint64(), 36)
	in := s.putInput(pk, it, deadline, id)
	return s.sendSettled(ctx, "put", pk, it, id, func() error {
		_, err := s.db.PutItem(ctx, in)
		return err
	}, func(err error) bool {
		var lost *types.ConditionalCheckFailedException
		return errors.As(err, &lost)
	})
}

// sendSettled sends a write of id conditioned on it.version (a put, or
// a transaction whose first item is pk) until its outcome is known:
// landed, or refused because another write got there first (refused
// tells that error). A write that fails without saying whether it landed,
// and a resend refused (it may have met its own first copy, which arrived
// late and landed), are settled by reading pk back: each write carries a
// fresh id and the ids of the writes before it, so the answer is exact,
// and nothing is sent again once it landed. While nothing has landed it
// is sent again, until the deadline: every copy carries one id and one
// condition, so at most one of them lands.
func (s *Store) sendSettled(ctx context.Context, op, pk string, it item, id string, send func() error, refused func(error) bool) (landed bool, err error) {
	for sent := 1; ; sent++ {
		err := send()
		if err == nil {
			return true, nil
		}
		if refused(err) && sent == 1 {
			return false, nil
		}
		if ctx.Err() != nil {
			return false, unavailable(op, err)
		}
		raw, rerr := s.read(ctx, pk)
		if rerr != nil {
			return false, unavailable(op, fmt.Errorf("%w; reading it back: %w", err, rerr))
		}
		version, writes := writeHistory(raw)
		switch {
		case slices.Contains(writes, id):
			return true, nil
		case raw == nil && !it.exists || raw != nil && it.exists && version == it.version:
			continue
		case raw == nil && it.exists || raw != nil && version-it.version < recentWrites && version != it.version:
			// Another write landed instead. The version moved past the one
			// this write is conditioned on, so no copy of it can land later.
			return false, nil
		default:
			return false, unavailable(op, fmt.Errorf("%w; its outcome could not be settled (more writes followed it than an item remembers)", err))
		}
	}
}

// putInput is the conditional put of it's new state, carrying write id
// and the ids of the writes before it.
func (s *Store) putInput(pk string, it item, deadline int64, id string) *dynamodb.PutItemInput {
	text, _ := it.state.MarshalText()
	ids := append(it.writes[max(0, len(it.writes)-(recentWrites-1)):len(it.writes):len(it.writes)], id)
	in := &dynamodb.PutItemInput{TableName: &s.table,
		Item: map[string]types.AttributeValue{
			"pk":          &types.AttributeValueMemberS{Value: pk},
			"state":       &types.AttributeValueMemberS{Value: string(text)},
			"version":     &types.AttributeValueMemberN{Value: strconv.FormatInt(it.version+1, 10)},
			"deadline_ms": &types.AttributeValueMemberN{Value: strconv.FormatInt(deadline, 10)},
			// Native TTL is in seconds and deletes lazily (up to days
			// late): it only collects garbage; deadline_ms decides.
			"expires_at": &types.AttributeValueMemberN{Value: strconv.FormatInt(deadline/1000+1, 10)},
			"writes":     &types.AttributeValueMemberS{Value: strings.Join(ids, " ")},
		},
	}
	if it.exists {
		in.ConditionExpression = aws.String("version = :v")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: strconv.FormatInt(it.version, 10)}}
	} else {
		in.ConditionExpression = aws.String("attribute_not_exists(pk)")
	}
	return in
}

// writeHistory reads an item's version and recent write ids, for
// resolving a put; an item without them (or not ours) has none.
func writeHistory(raw map[string]types.AttributeValue) (version int64, writes []string) {
	if v, ok := raw["version"].(*types.AttributeValueMemberN); ok {
		version, _ = strconv.ParseInt(v.Value, 10, 64)
	}
	if w, ok := raw["writes"].(*types.AttributeValueMemberS); ok {
		writes = strings.Fields(w.Value)
	}
	return version, writes
}

// CheckMany implements store.Store, every key at one instant.
func (s *Store) CheckMany(ctx context.Context, st engine.Strategy, keys []store.Key, now, cost int64) ([]engine.Decision, error) {
	if now == 0 {
		now = time.Now().UnixMilli()
	}
	return store.CheckEach(ctx, s, st, keys, now, cost, s.timeout)
}

// Load implements store.Store with one consistent read.
func (s *Store) Load(ctx context.Context, st engine.Strategy, key store.Key, now int64) (engine.State, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if now == 0 {
		now = time.Now().UnixMilli()
	}
	it, err := s.get(ctx, st, s.Key(key), now)
	if err != nil {
		return engine.State{}, 0, unavailable("get", err)
	}
	return it.state, now, nil
}

// Close implements store.Store.
func (s *Store) Close() error { return nil }

// Refund implements store.Refunder: the engine's Refund as one
// read-decide-write (a compare-and-set, as a check), the item's deadline kept.
func (s *Store) Refund(ctx context.Context, st engine.Strategy, key store.Key, at, now, cost int64) error {
	r, ok := st.(engine.Refunder)
	if !ok {
		return fmt.Errorf("dynamodb refund: %s charges cannot be refunded", st.Kind())
	}
	return s.apply(ctx, st, s.Key(key), now, func(state *engine.State, n int64) (int64, bool) {
		return keepDeadline, r.Refund(state, at, n, cost)
	})
}

// maxTransactItems is the most items one DynamoDB transaction may write.
const maxTransactItems = 100

// CheckAll implements store.AllOrNothing with one DynamoDB transaction:
// every key is read, the charges are decided in order, and the new items
// are written by TransactWriteItems, each conditioned on the version read,
// only when every charge is allowed. A transaction that loses a race is
// decided again on fresh reads; one whose reply is lost is resolved by
// reading its first item back, as a put is. More keys than a transaction
// takes (100) are looked at and then charged in turn, the ones made before
// a denial refunded (store.CheckAllInTurn).
func (s *Store) CheckAll(ctx context.Context, charges []store.Charge, now int64) ([]engine.Decision, bool, error) {
	var keys []string
	var strategies []engine.Strategy // each key's state is read as its first charge's
	index := make(map[string]int, len(charges))
	for _, c := range charges {
		if _, ok := index[s.Key(c.Key)]; !ok {
			index[s.Key(c.Key)] = len(keys)
			keys = append(keys, s.Key(c.Key))
			strategies = append(strategies, c.Strategy)
		}
	}
	if len(keys) > maxTransactItems {
		return store.CheckAllInTurn(ctx, s, charges, now)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	explicit := now != 0
	for attempt := 0; attempt < s.retries; attempt++ {
		if !explicit {
			now = time.Now().UnixMilli()
		}
		items := make([]item, len(keys))
		deadlines := make([]int64, len(keys))
		for i, k := range keys {
			it, err := s.get(ctx, strategies[i], k, now)
			if err != nil {
				return nil, false, unavailable("get", err)
			}
			items[i] = it
		}
		out := make([]engine.Decision, len(charges))
		allowed := true
		for i, c := range charges {
			j := index[s.Key(c.Key)]
			d, ttl := c.Strategy.Check(&items[j].state, now, c.Cost)
			out[i] = d
			allowed = allowed && d.Allowed
			if ttl > 0 {
				deadlines[j] = max(deadlines[j], now+ttl)
			}
		}
		if !allowed {
			return out, false, nil
		}
		landed, err := s.transact(ctx, keys, items, deadlines)
		if err != nil {
			return nil, false, err
		}
		if landed {
			return out, true, nil
		}
		backoff := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, false, unavailable("transact", ctx.Err())
		}
	}
	return nil, false, unavailable("transact", fmt.Errorf("%d transactions lost to concurrent writers", s.retries))
}

// transact writes every item's new state in one transaction, each on
// condition of its version. landed is false when a condition failed.
func (s *Store) transact(ctx context.Context, keys []string, items []item, deadlines []int64) (landed bool, err error) {
	id := strconv.FormatUint(rand.Uint64(), 36)
	in := &dynamodb.TransactWriteItemsInput{ClientRequestToken: aws.String(id)}
	for i, k := range keys {
		put := s.putInput(k, items[i], deadlines[i], id)
		in.TransactItems = append(in.TransactItems, types.TransactWriteItem{Put: &types.Put{
			TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression,
			ExpressionAttributeValues: put.ExpressionAttributeValues,
		}})
	}
	return s.sendSettled(ctx, "transact", keys[0], items[0], id, func() error {
		_, err := s.db.TransactWriteItems(ctx, in)
		return err
	}, func(err error) bool {
		var canceled *types.TransactionCanceledException
		return errors.As(err, &canceled)
	})
}
