package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/strangler/strangler/internal/testutil"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/store"
)

// holder is a replica's applied state, with the same rule as
// admin.Overrides: never apply a state that is not newer.
type holder struct {
	mu      sync.Mutex
	st      store.State
	applied []int64
}

func (h *holder) Applied() store.State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st.Clone()
}

func (h *holder) Apply(s store.State, _ string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.Newer(h.st) {
		return false
	}
	h.st = s.Clone()
	h.applied = append(h.applied, s.Revision)
	return true
}

func (h *holder) rev() int64 { return h.Applied().Revision }

func openRedis(t *testing.T, url, replica string) (*store.Redis, *store.Metrics) {
	t.Helper()
	cfg, err := store.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	m := store.NewMetrics(prometheus.NewRegistry())
	r, err := store.OpenRedis(cfg, store.RedisOptions{Replica: replica, Metrics: m, Heartbeat: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, m
}

// run runs the replica's synchronisation until the test ends.
func run(t *testing.T, r *store.Redis, h *holder) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, h); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func flip(route, side string) func(*store.State) ([]store.Event, error) {
	return func(s *store.State) ([]store.Event, error) {
		s.SetOverride(routing.Override{Route: route, Side: side, Reason: "test", By: "t", At: time.Now().UTC()})
		return []store.Event{{Action: "side", By: "t", Route: route, New: "side " + side}}, nil
	}
}

func TestRedisConcurrentUpdatesLoseNothing(t *testing.T) {
	t.Parallel()
	rs := testutil.StartRedis(t)
	a, _ := openRedis(t, rs.URL(), "a")
	b, _ := openRedis(t, rs.URL(), "b")
	ctx := context.Background()
	if _, err := a.Seed(ctx, &holder{}); err != nil {
		t.Fatal(err)
	}
	// 40 changes from two replicas at once, each adding its own route:
	// every one lands, each at its own revision, each audited once.
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := a
			if i%2 == 1 {
				st = b
			}
			if _, err := st.Update(ctx, flip(fmt.Sprintf("r%02d", i), "legacy")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := a.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != 40 || len(got.Overrides) != 40 {
		t.Fatalf("revision %d with %d overrides, want 40 and 40", got.Revision, len(got.Overrides))
	}
	events, err := b.Audit(ctx, store.Query{Action: "side", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	revs := map[int64]bool{}
	for _, e := range events {
		revs[e.Revision] = true
	}
	if len(events) != 40 || len(revs) != 40 {
		t.Fatalf("%d side events over %d revisions, want 40 and 40", len(events), len(revs))
	}
	// Newest first, and filters apply.
	one, _ := b.Audit(ctx, store.Query{Route: "r07"})
	if len(one) != 1 || one[0].Route != "r07" || one[0].Replica != "b" {
		t.Fatalf("route filter: %+v", one)
	}
	page, _ := b.Audit(ctx, store.Query{Limit: 5})
	if len(page) != 5 || page[0].Revision < page[4].Revision {
		t.Fatalf("first page: %+v", page)
	}
	next, _ := b.Audit(ctx, store.Query{Limit: 5, Before: page[4].ID})
	if len(next) != 5 || next[0].Revision >= page[4].Revision {
		t.Fatalf("second page does not follow the first: %+v", next)
	}
}

func TestRedisNotificationAppliesAndStaleStatesAreIgnored(t *testing.T) {
	t.Parallel()
	rs := testutil.StartRedis(t)
	// A resync far away: only the notification can deliver.
	a, _ := openRedis(t, rs.URL("resync=1h"), "a")
	b, _ := openRedis(t, rs.URL("resync=1h"), "b")
	ha, hb := &holder{}, &holder{}
	ctx := context.Background()
	if _, err := a.Seed(ctx, ha); err != nil {
		t.Fatal(err)
	}
	run(t, b, hb)
	testutil.Eventually(t, 5*time.Second, func() bool { return hb.Applied().Epoch != "" }, func() string { return "b never applied the seed" })
	for i := range 3 {
		if _, err := a.Update(ctx, flip("r", []string{"legacy", "new", "legacy"}[i])); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return hb.rev() == 3 }, func() string { return fmt.Sprintf("b at revision %d, want 3", hb.rev()) })
	// An older state published again (a late or replayed notification)
	// is never applied over the newer one.
	old := hb.Applied()
	old.Revision = 2
	old.Overrides = nil
	doc, _ := json.Marshal(old)
	if _, err := rs.Do("PUBLISH", "strangler:changes", string(doc)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Update(ctx, flip("s", "new")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return hb.rev() == 4 }, func() string { return fmt.Sprintf("b at revision %d, want 4", hb.rev()) })
	hb.mu.Lock()
	defer hb.mu.Unlock()
	for i := 1; i < len(hb.applied); i++ {
		if hb.applied[i] <= hb.applied[i-1] {
			t.Fatalf("revisions applied out of order: %v", hb.applied)
		}
	}
	if len(hb.st.Overrides) != 2 {
		t.Fatalf("b serves %+v", hb.st.Overrides)
	}
}

func TestRedisResyncHealsAMissedNotification(t *testing.T) {
	t.Parallel()
	rs := testutil.StartRedis(t)
	b, m := openRedis(t, rs.URL("resync=200ms"), "b")
	hb := &holder{}
	run(t, b, hb)
	testutil.Eventually(t, 5*time.Second, func() bool { return hb.Applied().Epoch != "" }, func() string { return "b never seeded the store" })
	// A change written without its notification (as if it was lost).
	st := hb.Applied()
	st.Revision++
	st.SetOverride(routing.Override{Route: "quiet", Side: "legacy", Reason: "x", By: "t"})
	doc, _ := json.Marshal(st)
	if _, err := rs.Do("HSET", "strangler:state", "revision", fmt.Sprint(st.Revision), "doc", string(doc)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return hb.rev() == st.Revision }, func() string { return "the resync never applied the change" })
	if got := promtest.ToFloat64(m.Repairs); got < 1 {
		t.Fatalf("strangler_store_resync_repairs_total = %v", got)
	}
}

func TestRedisDataLossIsDetectedAndReseededFromTheNewestReplica(t *testing.T) {
	t.Parallel()
	rs := testutil.StartRedis(t)
	a, ma := openRedis(t, rs.URL("resync=200ms"), "a")
	b, mb := openRedis(t, rs.URL("resync=200ms"), "b")
	ctx := context.Background()
	ha, hb := &holder{}, &holder{}
	if _, err := a.Seed(ctx, ha); err != nil {
		t.Fatal(err)
	}
	for _, side := range []string{"legacy", "new", "legacy"} {
		st, err := a.Update(ctx, flip("r", side))
		if err != nil {
			t.Fatal(err)
		}
		ha.Apply(st, "local")
	}
	// b missed the last change: it serves revision 2, a revision 3.
	older := ha.Applied()
	older.Revision = 2
	hb.Apply(older, "test")
	if _, err := rs.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	// b notices first and seeds its older state; a then replaces the seed
	// with its newer one.
	if ok, err := b.Seed(ctx, hb); !ok || err != nil {
		t.Fatalf("b seed: %v %v", ok, err)
	}
	run(t, a, ha)
	run(t, b, hb)
	testutil.Eventually(t, 5*time.Second, func() bool { return hb.rev() == 3 && ha.rev() == 3 }, func() string {
		return fmt.Sprintf("a at %d, b at %d; want both at 3", ha.rev(), hb.rev())
	})
	got, _ := a.Load(ctx)
	if got.Revision != 3 || got.Epoch == older.Epoch || !got.Seeded {
		t.Fatalf("stored %+v", got)
	}
	events, _ := a.Audit(ctx, store.Query{Action: "reseed"})
	if len(events) != 2 {
		t.Fatalf("want 2 reseed events (b's, then a's replacement), got %+v", events)
	}
	if n := promtest.ToFloat64(ma.Reseeds) + promtest.ToFloat64(mb.Reseeds); n != 2 {
		t.Fatalf("reseeds counted %v", n)
	}
	// The next change clears the seed mark and continues the revisions.
	st, err := b.Update(ctx, flip("r", "new"))
	if err != nil || st.Revision != 4 || st.Seeded {
		t.Fatalf("after the reseed: %+v %v", st, err)
	}
}

func TestRedisLeaseHasOneHolder(t *testing.T) {
	t.Parallel()
	rs := testutil.StartRedis(t)
	a, _ := openRedis(t, rs.URL(), "a")
	b, _ := openRedis(t, rs.URL(), "b")
	la, lb := a.Lease("job", 600*time.Millisecond), b.Lease("job", 600*time.Millisecond)
	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	doneA := make(chan struct{})
	go func() { la.Run(ctxA); close(doneA) }()
	testutil.Eventually(t, 5*time.Second, la.Held, func() string { return "a never took the free lease" })
	go lb.Run(ctxB)
	// Over several renewals only a holds it.
	for range 20 {
		if lb.Held() {
			t.Fatal("both replicas hold the lease")
		}
		time.Sleep(50 * time.Millisecond)
	}
	tokA := la.Token()
	if h, _ := lb.Holder(context.Background()); h != "a" {
		t.Fatalf("holder %q", h)
	}
	cancelA()
	<-doneA
	if la.Held() {
		t.Fatal("a still holds a released lease")
	}
	testutil.Eventually(t, 5*time.Second, lb.Held, func() string { return "b never took the released lease" })
	if lb.Token() <= tokA {
		t.Fatalf("fencing token went from %d to %d", tokA, lb.Token())
	}
	// The store gone: b stops believing it holds the lease.
	rs.Kill()
	testutil.Eventually(t, 5*time.Second, func() bool { return !lb.Held() }, func() string { return "b holds a lease it cannot renew" })
}

func TestRedisUnreachable(t *testing.T) {
	t.Parallel()
	rs := testutil.StartRedis(t)
	a, m := openRedis(t, rs.URL(), "a")
	h := &holder{}
	run(t, a, h)
	testutil.Eventually(t, 5*time.Second, func() bool { return a.Up() }, func() string { return "never up" })
	rs.Kill()
	_, err := a.Update(context.Background(), flip("r", "legacy"))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("update with the store down: %v", err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return promtest.ToFloat64(m.Up) == 0 }, func() string { return "strangler_store_up stayed 1" })
	rs.Restart()
	testutil.Eventually(t, 5*time.Second, func() bool { return promtest.ToFloat64(m.Up) == 1 }, func() string { return "strangler_store_up never came back" })
	// The restarted store is empty: the replica seeded it again.
	testutil.Eventually(t, 5*time.Second, func() bool { _, err := a.Load(context.Background()); return err == nil }, func() string { return "never re-seeded" })
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestRedisStoreThatWentBackIsReseeded: a store restored from an older
// copy (same history, an older revision than a replica serves) is
// re-seeded from the replica on the next resync, audited, and changes go
// on from the newer revision.
func TestRedisStoreThatWentBackIsReseeded(t *testing.T) {
	t.Parallel()
	rs := testutil.StartRedis(t)
	a, _ := openRedis(t, rs.URL("resync=200ms"), "a")
	ha := &holder{}
	ctx := context.Background()
	if _, err := a.Seed(ctx, ha); err != nil {
		t.Fatal(err)
	}
	var old []byte
	for i, side := range []string{"legacy", "new", "legacy"} {
		st, err := a.Update(ctx, flip("r", side))
		if err != nil {
			t.Fatal(err)
		}
		ha.Apply(st, "local")
		if i == 0 {
			old, _ = json.Marshal(st)
		}
	}
	// Put revision 1 back, as a restore from an old copy would.
	if _, err := rs.Do("HSET", "strangler:state", "revision", "1", "doc", string(old)); err != nil {
		t.Fatal(err)
	}
	run(t, a, ha)
	testutil.Eventually(t, 5*time.Second, func() bool {
		st, err := a.Load(ctx)
		return err == nil && st.Revision == 3
	}, func() string { st, _ := a.Load(ctx); return "store at " + toJSON(st) })
	if ev, _ := a.Audit(ctx, store.Query{Action: "reseed"}); len(ev) != 1 || !strings.Contains(ev[0].Reason, "went back from revision 3 to 1") {
		t.Fatalf("reseed events %s", toJSON(ev))
	}
	st, err := a.Update(ctx, flip("r", "new"))
	if err != nil || st.Revision != 4 {
		t.Fatalf("next change %+v %v", st, err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return ha.rev() == 4 }, func() string { return "the replica never applied revision 4" })
}

// TestRedisStoreBackWithItsDataResumes: a Redis that stops with its data
// (persistence) and comes back, or that stops answering for a while (a
// stalled host, a partition) and answers again, is resumed: the replica
// keeps its state meanwhile, nothing is re-seeded, the revisions and the
// audit trail go on from where they were, and a change made through
// another replica while the first was cut off reaches it.
func TestRedisStoreBackWithItsDataResumes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		down, back func(rs *testutil.Redis)
	}{
		{"restarted with its data", (*testutil.Redis).Shutdown, (*testutil.Redis).Restart},
		{"stalled, then answering", (*testutil.Redis).Pause, (*testutil.Redis).Resume},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rs := testutil.StartRedis(t)
			a, ma := openRedis(t, rs.URL("resync=200ms"), "a")
			ha := &holder{}
			ctx := context.Background()
			if _, err := a.Seed(ctx, ha); err != nil {
				t.Fatal(err)
			}
			for _, side := range []string{"legacy", "new", "legacy"} {
				st, err := a.Update(ctx, flip("r", side))
				if err != nil {
					t.Fatal(err)
				}
				ha.Apply(st, "local")
			}
			epoch := ha.Applied().Epoch
			run(t, a, ha)
			testutil.Eventually(t, 5*time.Second, func() bool { return promtest.ToFloat64(ma.Up) == 1 }, func() string { return "never up" })

			tc.down(rs)
			testutil.Eventually(t, 10*time.Second, func() bool { return promtest.ToFloat64(ma.Up) == 0 }, func() string { return "strangler_store_up stayed 1" })
			if _, err := a.Update(ctx, flip("r", "new")); !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("a change with the store down: %v", err)
			}
			if st := ha.Applied(); st.Revision != 3 || st.Override("r").Side != "legacy" {
				t.Fatalf("the replica lost its state with the store down: %s", toJSON(st))
			}
			tc.back(rs)
			testutil.Eventually(t, 10*time.Second, func() bool { return promtest.ToFloat64(ma.Up) == 1 }, func() string { return "strangler_store_up never came back" })

			// Another replica changes the state: the first applies it.
			b, _ := openRedis(t, rs.URL("resync=200ms"), "b")
			st, err := b.Update(ctx, flip("r", "new"))
			if err != nil || st.Revision != 4 || st.Epoch != epoch || st.Seeded {
				t.Fatalf("the first change after the store came back: %s %v", toJSON(st), err)
			}
			testutil.Eventually(t, 5*time.Second, func() bool { return ha.rev() == 4 }, func() string { return fmt.Sprintf("a at revision %d, want 4", ha.rev()) })
			// Give a wrong re-seed the time to happen (resync every 200ms).
			time.Sleep(600 * time.Millisecond)
			if ev, _ := a.Audit(ctx, store.Query{Action: "reseed"}); len(ev) != 0 {
				t.Fatalf("a store that kept its data was re-seeded: %s", toJSON(ev))
			}
			if n := promtest.ToFloat64(ma.Reseeds); n != 0 {
				t.Fatalf("strangler_store_reseeds_total = %v", n)
			}
			if ev, _ := a.Audit(ctx, store.Query{Action: "side"}); len(ev) != 4 {
				t.Fatalf("the audit trail did not survive: %s", toJSON(ev))
			}
			if got, _ := a.Load(ctx); got.Revision != 4 || got.Epoch != epoch || got.Override("r").Side != "new" {
				t.Fatalf("stored %s", toJSON(got))
			}
		})
	}
}
