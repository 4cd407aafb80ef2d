package store_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
	"github.com/strangler/strangler/shadow"
)

// TestShadowPoolIsFleetWide: two replicas' shadow stores backed by one
// Redis report the fleet's counts and mismatches, each its own included;
// with Redis down they keep their last view and their new results, and
// push them once it is back.
func TestShadowPoolIsFleetWide(t *testing.T) {
	t.Parallel()
	rs := testutil.StartRedis(t)
	a, _ := openRedis(t, rs.URL(), "a")
	b, _ := openRedis(t, rs.URL(), "b")
	sa, sb := shadow.NewPooled(10), shadow.NewPooled(10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	go sa.Sync(ctx, a.ShadowPool(), 50*time.Millisecond, log)
	go sb.Sync(ctx, b.ShadowPool(), 50*time.Millisecond, log)
	time.Sleep(20 * time.Millisecond) // both backed before results arrive
	mismatch := func(id string) *shadow.Result {
		return &shadow.Result{Route: "r", Result: "mismatch", RequestID: id, Diffs: []shadow.Diff{{Path: "$.items[3].price"}}}
	}
	for range 3 {
		sa.Add(&shadow.Result{Route: "r", Result: "match"})
	}
	sa.Add(mismatch("a1"))
	sb.Add(mismatch("b1"))
	sb.Add(mismatch("b2"))
	sb.Add(&shadow.Result{Route: "s", Result: "error"})
	for _, st := range []*shadow.Pooled{sa, sb} {
		testutil.Eventually(t, 5*time.Second, func() bool {
			rep, ok := shadow.Report(st, "r", shadow.DefaultReadiness, 10)
			return ok && rep.Compared == 6 && len(st.Recent("r")) == 3 && len(st.Routes()) == 2
		}, func() string {
			rep, _ := shadow.Report(st, "r", shadow.DefaultReadiness, 10)
			return "fleet report " + toJSON(rep) + toJSON(st.Recent("r"))
		})
	}
	rep, _ := shadow.Report(sb, "r", shadow.DefaultReadiness, 10)
	if rep.Counts["mismatch"] != 3 || len(rep.TopPaths) != 1 || rep.TopPaths[0].Requests != 3 || rep.TopPaths[0].Path != "$.items[*].price" {
		t.Fatalf("fleet report %s", toJSON(rep))
	}
	rs.Kill()
	sa.Add(&shadow.Result{Route: "r", Result: "match"})
	// The last view plus its own new result, at once.
	if rep, _ := shadow.Report(sa, "r", shadow.DefaultReadiness, 10); rep.Compared != 7 {
		t.Fatalf("with the store down: compared %d, want 7", rep.Compared)
	}
	time.Sleep(200 * time.Millisecond)
	rs.Restart() // empty: counting starts again with what waited
	testutil.Eventually(t, 5*time.Second, func() bool {
		rep, ok := shadow.Report(sb, "r", shadow.DefaultReadiness, 10)
		return ok && rep.Compared == 1
	}, func() string {
		rep, _ := shadow.Report(sb, "r", shadow.DefaultReadiness, 10)
		return "after the restart " + toJSON(rep)
	})
}
