package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// auditKeep is roughly how many audit events the Redis stream keeps
// (XADD MAXLEN ~).
const auditKeep = 10000

// staleAfter: a replica whose last heartbeat is older is shown as gone;
// pruneAfter: it is removed from the list.
const (
	staleAfter = 5 * time.Second
	pruneAfter = time.Hour
)

// RedisOptions configure OpenRedis.
type RedisOptions struct {
	// Replica names this gateway in the fleet (default: the host name,
	// with the process id unless it is 1, as in a container).
	Replica string
	// Operator is this replica's operator address, shown by ctl fleet.
	Operator string
	// Version is the gateway's version, shown by ctl fleet.
	Version string
	// Heartbeat is how often the replica reports itself and checks the
	// store. Default 1s.
	Heartbeat time.Duration
	Metrics   *Metrics
	Logger    *slog.Logger
}

// Redis is the shared store of a fleet. Its client never blocks the
// request path: the gateway reads the state it applied, in memory.
type Redis struct {
	cfg     Config
	c       *redis.Client
	o       RedisOptions
	log     *slog.Logger
	started time.Time

	up      atomic.Bool
	upKnown atomic.Bool
	mu      sync.Mutex
	leases  []*RedisLease
}

// Holder is the replica's side of the synchronisation: package admin's
// Overrides.
type Holder interface {
	// Applied returns the state the replica serves.
	Applied() State
	// Apply makes s the served state unless it is not Newer; it reports
	// whether it did.
	Apply(s State, source string) bool
}

var loggerOnce sync.Once

// OpenRedis returns a Redis store for a parsed URL. It does not connect:
// the client connects on first use and reconnects by itself.
func OpenRedis(cfg Config, o RedisOptions) (*Redis, error) {
	if cfg.Kind != "redis" {
		return nil, fmt.Errorf("not a Redis URL: %s", cfg.URL)
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Replica == "" {
		o.Replica = DefaultReplica()
	}
	log := o.Logger.With("component", "store")
	loggerOnce.Do(func() { redis.SetLogger(goRedisLogger{log}) })
	r := &Redis{cfg: cfg, o: o, log: log, started: time.Now()}
	if cfg.failover != nil {
		r.c = redis.NewFailoverClient(cfg.failover)
	} else {
		r.c = redis.NewClient(cfg.single)
	}
	return r, nil
}

// goRedisLogger sends go-redis's own messages (reconnects) to the debug
// log instead of stderr.
type goRedisLogger struct{ log *slog.Logger }

func (l goRedisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug("redis client", "message", fmt.Sprintf(format, v...))
}

// DefaultReplica is the host name, with the process id unless it is 1.
func DefaultReplica() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "strangler"
	}
	if pid := os.Getpid(); pid != 1 {
		h += "-" + strconv.Itoa(pid)
	}
	return h
}

// Kind is "redis".
func (r *Redis) Kind() string { return "redis" }

// Where is the URL without its password.
func (r *Redis) Where() string { return r.cfg.URL }

// Replica is this replica's name.
func (r *Redis) Replica() string { return r.o.Replica }

// Up reports whether the last heartbeat reached the store.
func (r *Redis) Up() bool { return r.up.Load() }

func (r *Redis) key(name string) string { return r.cfg.Prefix + name }

func (r *Redis) count(op string) {
	if r.o.Metrics != nil {
		r.o.Metrics.Errors.WithLabelValues(op).Inc()
	}
}

// Load reads the state.
func (r *Redis) Load(ctx context.Context) (State, error) {
	ctx, cancel := opContext(ctx)
	defer cancel()
	b, err := r.c.HGet(ctx, r.key("state"), "doc").Bytes()
	if errors.Is(err, redis.Nil) {
		return State{}, ErrNoState
	}
	if err != nil {
		r.count("load")
		return State{}, wrapUnavailable(err)
	}
	return decodeState(b)
}

// casScript writes a state if the stored one is what the caller read:
// ARGV[1] the expected revision ("" when the state must be missing),
// ARGV[2] the expected epoch, ARGV[3] "1" when the stored state must be a
// seed; then the new revision, epoch, seeded flag and document, the
// notification channel, the audit stream's length, and the events. The
// state, its audit events and the notification are one atomic step.
var casScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'revision', 'epoch', 'seeded')
if ARGV[1] == '' then
  if cur[1] then return 'conflict' end
else
  if not cur[1] then return 'missing' end
  if cur[1] ~= ARGV[1] or (cur[2] or '') ~= ARGV[2] then return 'conflict' end
  if ARGV[3] == '1' and cur[3] ~= '1' then return 'conflict' end
end
redis.call('HSET', KEYS[1], 'revision', ARGV[4], 'epoch', ARGV[5], 'seeded', ARGV[6], 'doc', ARGV[7])
for i = 10, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[9], '*', 'e', ARGV[i])
end
redis.call('PUBLISH', ARGV[8], ARGV[7])
return 'ok'
`)

type expect struct {
	missing bool
	rev     int64
	epoch   string
	seeded  bool
}

// cas runs casScript: "ok", "conflict" or "missing".
func (r *Redis) cas(ctx context.Context, ex expect, next State, events []Event) (string, error) {
	doc, err := json.Marshal(next)
	if err != nil {
		return "", err
	}
	args := []any{"", ex.epoch, "0", next.Revision, next.Epoch, "0", doc, r.key("changes"), auditKeep}
	if !ex.missing {
		args[0] = strconv.FormatInt(ex.rev, 10)
	}
	if ex.seeded {
		args[2] = "1"
	}
	if next.Seeded {
		args[5] = "1"
	}
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			return "", err
		}
		args = append(args, b)
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	res, err := casScript.Run(ctx, r.c, []string{r.key("state"), r.key("audit")}, args...).Text()
	if err != nil {
		return "", wrapUnavailable(err)
	}
	return res, nil
}

// Update changes the state with a compare-and-set on its revision.
// ErrNoState: the store lost its state; seed it (Seed) and try again.
func (r *Redis) Update(ctx context.Context, change func(*State) ([]Event, error)) (State, error) {
	for attempt := range 50 {
		if attempt > 0 {
			// Another replica changed the state in between: back off a
			// little (jittered, growing) so that writers racing each other
			// all get through.
			d := time.Duration(mrand.Int64N(int64(min(attempt, 20)) * int64(2*time.Millisecond)))
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return State{}, ctx.Err()
			}
		}
		cur, err := r.Load(ctx)
		if err != nil {
			if !errors.Is(err, ErrNoState) {
				r.count("update")
			}
			return State{}, err
		}
		next := cur.Clone()
		events, err := change(&next)
		if err != nil || len(events) == 0 {
			return cur, err
		}
		next.Revision, next.Epoch, next.Seeded = cur.Revision+1, cur.Epoch, false
		r.stamp(events, next.Revision)
		res, err := r.cas(ctx, expect{rev: cur.Revision, epoch: cur.Epoch}, next, events)
		switch {
		case err != nil:
			r.count("update")
			return State{}, err
		case res == "ok":
			return next, nil
		case res == "missing":
			return State{}, ErrNoState
		}
	}
	return State{}, ErrConflict
}

func (r *Redis) stamp(events []Event, rev int64) {
	for i := range events {
		events[i].Replica = r.o.Replica
		if rev > 0 {
			events[i].Revision = rev
		}
		if events[i].Time.IsZero() {
			events[i].Time = time.Now().UTC()
		}
	}
}

// Record appends events to the audit stream.
func (r *Redis) Record(ctx context.Context, events ...Event) error {
	r.stamp(events, 0)
	ctx, cancel := opContext(ctx)
	defer cancel()
	p := r.c.Pipeline()
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		p.XAdd(ctx, &redis.XAddArgs{Stream: r.key("audit"), MaxLen: auditKeep, Approx: true, Values: []any{"e", b}})
	}
	if _, err := p.Exec(ctx); err != nil {
		r.count("record")
		return wrapUnavailable(err)
	}
	return nil
}

// Audit reads the audit stream, newest first.
func (r *Redis) Audit(ctx context.Context, q Query) ([]Event, error) {
	ctx, cancel := opContext(ctx)
	defer cancel()
	out := []Event{}
	end := "+"
	if q.Before != "" {
		end = "(" + q.Before
	}
	// Scan at most 10,000 entries for a filtered query.
	for scanned := 0; len(out) < q.limit() && scanned < auditKeep; {
		msgs, err := r.c.XRevRangeN(ctx, r.key("audit"), end, "-", 200).Result()
		if err != nil {
			r.count("audit")
			if strings.Contains(err.Error(), "Invalid stream ID") {
				return nil, fmt.Errorf("bad event id %q", q.Before)
			}
			return nil, wrapUnavailable(err)
		}
		for _, m := range msgs {
			s, _ := m.Values["e"].(string)
			var e Event
			if json.Unmarshal([]byte(s), &e) != nil {
				continue
			}
			e.ID = m.ID
			if q.match(&e) && len(out) < q.limit() {
				out = append(out, e)
			}
		}
		scanned += len(msgs)
		if len(msgs) < 200 {
			break
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
	return out, nil
}

// Seed writes h's state into a store that holds none (or replaces a seed
// older than h's), audited; it reports whether it wrote. A store that
// lost its data is detected here: the replicas held a state, the store
// none.
func (r *Redis) Seed(ctx context.Context, h Holder) (bool, error) {
	for range 3 {
		stored, err := r.Load(ctx)
		switch {
		case errors.Is(err, ErrNoState):
			ok, err := r.seedMissing(ctx, h)
			if err != nil || ok {
				return ok, err
			}
		case err != nil:
			return false, err
		default:
			cur := h.Applied()
			if !(stored.Seeded && stored.Epoch != cur.Epoch && stored.Revision < cur.Revision) {
				h.Apply(stored, "resync")
				return false, nil
			}
			ok, err := r.replaceSeed(ctx, h, stored)
			if err != nil || ok {
				return ok, err
			}
		}
	}
	return false, nil
}

func (r *Redis) seedMissing(ctx context.Context, h Holder) (bool, error) {
	cur := h.Applied()
	next := cur.Clone()
	next.Epoch, next.Seeded = newEpoch(), true
	ev := Event{Action: "init", By: "store", Reason: "the store held no state: a new store",
		New: fmt.Sprintf("revision %d (%d overrides, %d forced breakers)", next.Revision, len(next.Overrides), len(next.Breakers))}
	if cur.Revision > 0 || !cur.Empty() {
		ev.Action = "reseed"
		ev.Reason = fmt.Sprintf("the store held no state (it lost its data, or it is a new store): re-seeded from replica %s's revision %d", r.o.Replica, cur.Revision)
	}
	events := []Event{ev}
	r.stamp(events, next.Revision)
	res, err := r.cas(ctx, expect{missing: true}, next, events)
	if err != nil || res != "ok" {
		return false, err
	}
	r.seeded(ev, next, h)
	return true, nil
}

func (r *Redis) replaceSeed(ctx context.Context, h Holder, stored State) (bool, error) {
	cur := h.Applied()
	return r.replace(ctx, h, stored, true, stored.Epoch,
		fmt.Sprintf("replaced the re-seeded revision %d with replica %s's newer revision %d", stored.Revision, r.o.Replica, cur.Revision))
}

// restore answers a store that went back in its history (restored from
// an older copy: same epoch, an older revision than this replica serves)
// with the replica's state, under a new epoch.
func (r *Redis) restore(ctx context.Context, h Holder, stored State) (bool, error) {
	cur := h.Applied()
	return r.replace(ctx, h, stored, false, newEpoch(),
		fmt.Sprintf("the store went back from revision %d to %d (restored from an older copy?): re-seeded from replica %s's revision %d",
			cur.Revision, stored.Revision, r.o.Replica, cur.Revision))
}

func (r *Redis) replace(ctx context.Context, h Holder, stored State, seeded bool, epoch, reason string) (bool, error) {
	cur := h.Applied()
	next := cur.Clone()
	next.Epoch, next.Seeded = epoch, true
	ev := Event{Action: "reseed", By: "store", Reason: reason,
		New: fmt.Sprintf("revision %d (%d overrides, %d forced breakers)", next.Revision, len(next.Overrides), len(next.Breakers))}
	events := []Event{ev}
	r.stamp(events, next.Revision)
	res, err := r.cas(ctx, expect{rev: stored.Revision, epoch: stored.Epoch, seeded: seeded}, next, events)
	if err != nil || res != "ok" {
		return false, err
	}
	r.seeded(ev, next, h)
	return true, nil
}

func (r *Redis) seeded(ev Event, next State, h Holder) {
	if ev.Action == "reseed" {
		r.log.Warn("store re-seeded", "reason", ev.Reason, "revision", next.Revision, "epoch", next.Epoch)
		if r.o.Metrics != nil {
			r.o.Metrics.Reseeds.Inc()
		}
	} else {
		r.log.Info("store initialised", "revision", next.Revision, "epoch", next.Epoch)
	}
	r.log.Info("audit", ev.Log()...)
	h.Apply(next, "seed")
}

func newEpoch() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run keeps h in step with the store until ctx ends: it applies every
// notification, resyncs fully every Resync (and at once after a
// reconnect), seeds a store that lost its state, and heartbeats.
func (r *Redis) Run(ctx context.Context, h Holder) {
	kick := make(chan struct{}, 1)
	resyncNow := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.subscribe(ctx, h, resyncNow)
	}()
	go func() {
		defer wg.Done()
		r.heartbeats(ctx, h, resyncNow)
	}()
	t := time.NewTicker(r.cfg.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		case <-kick:
		}
		r.resync(ctx, h)
	}
}

// Resync reads the whole state and applies it when newer, seeding a store
// that lost it.
func (r *Redis) resync(ctx context.Context, h Holder) {
	st, err := r.Load(ctx)
	switch {
	case errors.Is(err, ErrNoState):
		if _, err := r.Seed(ctx, h); err != nil {
			r.log.Debug("seeding the store failed", "err", err)
		}
	case err != nil:
		r.log.Debug("resync failed", "err", err)
	default:
		if cur := h.Applied(); st.Epoch == cur.Epoch && st.Revision < cur.Revision {
			if _, err := r.restore(ctx, h, st); err != nil {
				r.log.Debug("re-seeding a store that went back failed", "err", err)
			}
			return
		}
		if r.deliver(ctx, h, st, "resync") && r.o.Metrics != nil {
			r.o.Metrics.Repairs.Inc()
		}
	}
}

// deliver applies a stored state, or answers a seed older than the
// replica's state with its own.
func (r *Redis) deliver(ctx context.Context, h Holder, st State, source string) bool {
	cur := h.Applied()
	if st.Seeded && st.Epoch != cur.Epoch && st.Revision < cur.Revision {
		ok, err := r.Seed(ctx, h)
		if err != nil {
			r.log.Debug("replacing a seed failed", "err", err)
		}
		return ok
	}
	return h.Apply(st, source)
}

func (r *Redis) subscribe(ctx context.Context, h Holder, resyncNow func()) {
	ps := r.c.Subscribe(ctx, r.key("changes"))
	defer ps.Close()
	ch := ps.ChannelWithSubscriptions(redis.WithChannelHealthCheckInterval(time.Second))
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			switch m := m.(type) {
			case *redis.Subscription:
				// (Re)subscribed: what was published meanwhile is lost.
				if m.Kind == "subscribe" {
					resyncNow()
				}
			case *redis.Message:
				st, err := decodeState([]byte(m.Payload))
				if err != nil {
					r.log.Warn("bad state notification ignored", "err", err)
					continue
				}
				r.deliver(ctx, h, st, "notification")
			}
		}
	}
}

// Replica is one gateway in the fleet, as its heartbeat describes it.
type Replica struct {
	ID       string    `json:"id"`
	Operator string    `json:"operator,omitempty"`
	Version  string    `json:"version,omitempty"`
	Revision int64     `json:"revision"`
	Epoch    string    `json:"epoch,omitempty"`
	Started  time.Time `json:"started"`
	Seen     time.Time `json:"seen"`
	// Connected: its last heartbeat is recent.
	Connected bool `json:"connected"`
}

func (r *Redis) heartbeats(ctx context.Context, h Holder, resyncNow func()) {
	t := time.NewTicker(r.o.Heartbeat)
	defer t.Stop()
	for {
		err := r.heartbeat(ctx, h)
		r.setUp(err)
		if err == nil {
			if reps, err := r.Replicas(ctx); err == nil && r.o.Metrics != nil {
				n := 0
				for _, rp := range reps {
					if rp.Connected {
						n++
					}
				}
				r.o.Metrics.Replicas.Set(float64(n))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Redis) setUp(err error) {
	was, known := r.up.Load(), r.upKnown.Load()
	up := err == nil
	r.up.Store(up)
	r.upKnown.Store(true)
	if r.o.Metrics != nil {
		r.o.Metrics.Up.Set(map[bool]float64{true: 1, false: 0}[up])
	}
	switch {
	case up && known && !was:
		r.log.Info("store reachable again", "store", r.cfg.URL)
	case !up && (was || !known):
		r.count("heartbeat")
		r.log.Error("store unreachable: serving the last state this replica applied; admin writes are refused until it is back", "store", r.cfg.URL, "err", err)
	}
}

func (r *Redis) heartbeat(ctx context.Context, h Holder) error {
	st := h.Applied()
	b, _ := json.Marshal(Replica{ID: r.o.Replica, Operator: r.o.Operator, Version: r.o.Version, Revision: st.Revision,
		Epoch: st.Epoch, Started: r.started.UTC(), Seen: time.Now().UTC()})
	ctx, cancel := opContext(ctx)
	defer cancel()
	return r.c.HSet(ctx, r.key("replicas"), r.o.Replica, b).Err()
}

// Replicas lists the replicas with a heartbeat in the store, removing
// those gone for an hour.
func (r *Redis) Replicas(ctx context.Context) ([]Replica, error) {
	ctx, cancel := opContext(ctx)
	defer cancel()
	m, err := r.c.HGetAll(ctx, r.key("replicas")).Result()
	if err != nil {
		return nil, wrapUnavailable(err)
	}
	now := time.Now()
	out := []Replica{}
	for id, v := range m {
		var rp Replica
		if json.Unmarshal([]byte(v), &rp) != nil {
			continue
		}
		if now.Sub(rp.Seen) > pruneAfter {
			r.c.HDel(ctx, r.key("replicas"), id)
			continue
		}
		rp.Connected = now.Sub(rp.Seen) < staleAfter
		out = append(out, rp)
	}
	slices.SortFunc(out, func(a, b Replica) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Close removes this replica from the list, releases its leases and
// closes the client. Call it after Run returned.
func (r *Redis) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r.mu.Lock()
	leases := r.leases
	r.mu.Unlock()
	for _, l := range leases {
		l.release(ctx)
	}
	_ = r.c.HDel(ctx, r.key("replicas"), r.o.Replica).Err()
	return r.c.Close()
}
