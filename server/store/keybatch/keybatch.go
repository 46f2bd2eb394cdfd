// Package keybatch decides concurrent requests on one key in a single
// store round trip. A store that reads a key's state, runs the engine and
// writes it back (Postgres under a row lock, DynamoDB by compare-and-set)
// otherwise makes every request on a hot key contend with every other: the
// lock queue or the lost compare-and-sets grow with the callers, until the
// deadline passes and the fail mode decides. Here, requests for a key that
// has a store operation in flight wait for it to finish and then go
// together: one read, the engine applied to that state once per request in
// arrival order, one write. Contention on a hot key is then between
// servers, not between requests, and a round trip decides a batch.
//
// The decisions are exactly those of the same requests applied one by one
// in that order at the batch's instant: the engine is the same and so is
// the order; only the number of round trips changes.
package keybatch

import (
	"context"
	"sync"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// Run runs a batch on a key's state read at now (the store's clock
// when the requests left it to the store), leaving the state to write in
// state. It reports the write's deadline (epoch ms) and whether there is
// anything to write: a batch of denials writes nothing.
type Run func(state *engine.State, now int64) (deadline int64, write bool)

// Apply is a store's atomic read-decide-write of one key: read the state at
// now (0: the store's clock), call decide on it, and write what decide
// leaves when it asks to. A store that loses a race (a compare-and-set, a
// concurrent insert) reads again and calls decide again on the fresh state;
// only the call whose write landed counts.
type Apply func(ctx context.Context, st engine.Strategy, key string, now int64, decide Run) error

// MaxBatch bounds the requests decided in one round trip, so one batch's
// engine work stays small next to the round trip it saves.
const MaxBatch = 256

// Group batches the decisions of one store, key by key.
type Group struct {
	apply  Apply
	mu     sync.Mutex
	queues map[queueKey]*queue
}

// New returns a Group deciding through apply.
func New(apply Apply) *Group {
	return &Group{apply: apply, queues: map[queueKey]*queue{}}
}

// Requests share a batch only when they would be decided identically one
// by one: the same state (key), the same strategy (a reload may change a
// policy's) and the same instant (0 = the store's clock at the read).
type queueKey struct {
	st  engine.Strategy
	key string
	now int64
}

// queue holds the requests that arrived while a batch for the key was in
// flight; the key has a queue exactly while a batch is in flight.
type queue struct {
	waiting []*waiter
}

type waiter struct {
	ctx  context.Context
	cost int64
	done chan struct{} // closed when d and err are set, or lead is
	d    engine.Decision
	err  error
	lead []*waiter // set when this waiter is to run the next batch
}

// Check decides a request of cost on key at now (0: the store's clock),
// batched with the concurrent requests on the same key.
func (g *Group) Check(ctx context.Context, st engine.Strategy, key string, now, cost int64) (engine.Decision, error) {
	w := &waiter{ctx: ctx, cost: cost, done: make(chan struct{})}
	k := queueKey{st: st, key: key, now: now}
	g.mu.Lock()
	if q, busy := g.queues[k]; busy {
		q.waiting = append(q.waiting, w)
		g.mu.Unlock()
		// Bounded without a timer: the batch in flight and the next are
		// each bounded by the store's deadline.
		<-w.done
		if w.lead == nil {
			return w.d, w.err
		}
	} else {
		g.queues[k] = &queue{}
		g.mu.Unlock()
		w.lead = []*waiter{w}
	}
	g.run(k, w.lead)
	return w.d, w.err
}

// run decides batch (the caller's own request among them) and hands the
// key to whoever arrived meanwhile: the first of them runs the next batch,
// so no caller waits on batches other than its own and the one before.
func (g *Group) run(k queueKey, batch []*waiter) {
	g.decide(k, batch)
	g.mu.Lock()
	q := g.queues[k]
	if len(q.waiting) == 0 {
		delete(g.queues, k)
		g.mu.Unlock()
		return
	}
	n := min(len(q.waiting), MaxBatch)
	next := q.waiting[:n:n]
	q.waiting = q.waiting[n:]
	g.mu.Unlock()
	next[0].lead = next
	close(next[0].done)
}

// decide applies batch in one store operation and answers each waiter but
// the leader (batch[0], the caller of run, which reads its own result).
func (g *Group) decide(k queueKey, batch []*waiter) {
	live := make([]*waiter, 0, len(batch))
	for _, w := range batch {
		if err := w.ctx.Err(); err != nil {
			w.err = err // its caller is gone: do not spend for it
			continue
		}
		live = append(live, w)
	}
	if len(live) > 0 {
		ds := make([]engine.Decision, len(live))
		// The store operation outlives any one caller: it answers all of
		// them, and the store bounds it with its own deadline.
		ctx := context.WithoutCancel(live[0].ctx)
		err := g.apply(ctx, k.st, k.key, k.now, func(state *engine.State, now int64) (deadline int64, write bool) {
			for i, w := range live {
				d, ttl := k.st.Check(state, now, w.cost)
				ds[i] = d
				if ttl > 0 {
					deadline, write = now+ttl, true
				}
			}
			return deadline, write
		})
		for i, w := range live {
			w.d, w.err = ds[i], err
		}
	}
	for _, w := range batch[1:] {
		close(w.done)
	}
}
