package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/strangler/strangler/internal/testutil"
	"github.com/strangler/strangler/routing"
)

type fakeClock = testutil.Clock

func endpoint(t *testing.T, s *Snapshot, name string) *EndpointState {
	t.Helper()
	for i := range s.Endpoints {
		if s.Endpoints[i].Name() == name {
			return &s.Endpoints[i]
		}
	}
	var have []string
	for _, e := range s.Endpoints {
		have = append(have, e.Name())
	}
	t.Fatalf("no endpoint %q (have %q)", name, have)
	return nil
}

// TestStats checks what one endpoint records: requests by side, status
// classes, the error rate, latency percentiles, bytes, first and last
// seen, the redacted example, parameters and claiming routes.
func TestStats(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	inv := New(Options{Now: clk.Now, Redact: []string{"Ticket"}})
	routeA := &routing.Route{ID: "course-detail"}
	obs := func(target string, r *routing.Route, side routing.Side, status int, d time.Duration) {
		var p routing.Path
		if _, err := p.Parse([]byte(target), nil); err != nil {
			t.Fatal(err)
		}
		inv.Observe("GET", &p, r, side, status, d, 1000)
	}
	obs("/course.php?id=1&token=s3cr3t&ticket=abc&lang=en", nil, routing.SideLegacy, 200, 2*time.Millisecond)
	clk.Advance(90 * time.Second)
	inv.Tick()
	for i := 0; i < 97; i++ {
		obs(fmt.Sprintf("/course.php?id=%d", i), nil, routing.SideLegacy, 200, 2*time.Millisecond)
	}
	obs("/course.php?id=5", routeA, routing.SideNew, 503, 400*time.Millisecond)
	obs("/course.php?id=6", routeA, routing.SideNew, 404, 400*time.Millisecond)

	s := inv.Snapshot()
	e := endpoint(t, s, "GET /course.php")
	if e.Requests != (Sides{98, 2}) {
		t.Errorf("requests %+v", e.Requests)
	}
	if e.Status != [6]int64{0, 0, 98, 0, 1, 1} {
		t.Errorf("status classes %v", e.Status)
	}
	if e.Bytes != 100*1000 {
		t.Errorf("bytes %d", e.Bytes)
	}
	if want := "/course.php?id=1&token=REDACTED&ticket=REDACTED&lang=en"; e.Example != want {
		t.Errorf("example %q, want %q (token redacted by default, Ticket by option, any case)", e.Example, want)
	}
	if !e.First.Equal(clk.Now().Add(-90*time.Second)) || !e.Last.Equal(clk.Now()) {
		t.Errorf("first %v last %v", e.First, e.Last)
	}
	got := fmt.Sprint(e.Params)
	if got != "[{id 100} {lang 1} {ticket 1} {token 1}]" {
		t.Errorf("params %s", got)
	}
	if fmt.Sprint(e.Routes) != "[{default 98} {course-detail 2}]" {
		t.Errorf("routes %v", e.Routes)
	}
	if raw, _ := json.Marshal(s); bytes.Contains(raw, []byte("s3cr3t")) || bytes.Contains(raw, []byte("abc")) {
		t.Errorf("a redacted value was stored: %s", raw)
	}

	rep := BuildReport(s, nil)
	er := rep.Endpoints[0]
	if er.Endpoint != "GET /course.php?id={id}" || er.Side != "legacy" || er.ClaimedBy != "course-detail" {
		t.Errorf("report %q side %s claimed by %q", er.Endpoint, er.Side, er.ClaimedBy)
	}
	if er.ErrorRate != 0.01 || er.LegacyShare != 1 {
		t.Errorf("error rate %v legacy share %v", er.ErrorRate, er.LegacyShare)
	}
	// 2ms and 400ms within the histogram's 12%.
	if er.P50ms < 1.76 || er.P50ms > 2.24 || er.P99ms < 352 || er.P99ms > 448 {
		t.Errorf("p50 %vms p99 %vms", er.P50ms, er.P99ms)
	}
	if er.Status["2xx"] != 98 || er.Status["5xx"] != 1 || er.Status["4xx"] != 1 {
		t.Errorf("status %v", er.Status)
	}
}

func TestHistogramBuckets(t *testing.T) {
	t.Parallel()
	prevHi := 0.0
	for i := 0; i < nBuckets; i++ {
		lo, hi := bucketBounds(i)
		if lo != prevHi || hi <= lo {
			t.Fatalf("bucket %d [%v,%v) after %v", i, lo, hi, prevHi)
		}
		if i > 0 && (hi-lo)/lo > 0.25+1e-9 {
			t.Fatalf("bucket %d too wide: [%v,%v)", i, lo, hi)
		}
		prevHi = hi
		mid := time.Duration((lo+hi)/2) * time.Microsecond
		if i > 0 && bucketOf(mid) != i {
			t.Fatalf("bucketOf(%v) = %d, want %d", mid, bucketOf(mid), i)
		}
	}
	if bucketOf(-time.Second) != 0 || bucketOf(0) != 0 || bucketOf(24*time.Hour) != nBuckets-1 {
		t.Fatal("out-of-range durations")
	}
}

// TestCapAndOverflow fills the inventory: requests to endpoints beyond the
// cap are counted in the overflow bucket (and the metric), the endpoints
// already learnt keep counting, and the overflow is logged once.
func TestCapAndOverflow(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	var logs bytes.Buffer
	inv := New(Options{MaxEndpoints: 5, Metrics: m, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := 0; i < 5; i++ {
		observe(t, inv, "GET", fmt.Sprintf("/page%c", 'a'+i), routing.SideLegacy, 200)
	}
	for i := 0; i < 20; i++ {
		observe(t, inv, "GET", fmt.Sprintf("/other/p%c/x", 'a'+i), routing.SideLegacy, 200)
		observe(t, inv, "POST", "/pagea", routing.SideNew, 200) // a new method: a new endpoint
	}
	observe(t, inv, "GET", "/pagea", routing.SideLegacy, 200)
	s := inv.Snapshot()
	if len(s.Endpoints) != 5 || inv.Len() != 5 {
		t.Fatalf("%d endpoints kept, want the cap, 5", len(s.Endpoints))
	}
	if s.Overflow.Requests != (Sides{20, 20}) {
		t.Errorf("overflow %+v, want 20 legacy and 20 new", s.Overflow.Requests)
	}
	if got := promtest.ToFloat64(m.Overflow); got != 40 {
		t.Errorf("strangler_inventory_overflow_total = %v", got)
	}
	if got := promtest.ToFloat64(m.endpoints); got != 5 {
		t.Errorf("strangler_inventory_endpoints = %v", got)
	}
	if e := endpoint(t, s, "GET /pagea"); e.Requests.Total() != 2 {
		t.Errorf("a known endpoint stopped counting: %+v", e.Requests)
	}
	if n := strings.Count(logs.String(), "inventory full"); n != 1 {
		t.Errorf("overflow logged %d times:\n%s", n, logs.String())
	}
	rep := BuildReport(s, nil)
	if rep.Overflow.Requests.Total() != 40 || rep.Overflow.MaxEndpoints != 5 {
		t.Errorf("report overflow %+v", rep.Overflow)
	}
}

// TestHostilePathsAreBounded sends many random paths and query keys:
// the endpoints stay within the cap and the tree within its node budget,
// every request is counted (learnt or in the overflow bucket), and nothing
// panics.
func TestHostilePathsAreBounded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		target func(i int) string
		limit  string
	}{
		{"random paths and query key sets", func(i int) string {
			// Paths collapse; sets of selector keys do not.
			return fmt.Sprintf("/a%d/b%d?k%d=x&k%d=x&k%d=x", i, i*7, i%32, (i/32)%32, (i/1024)%32)
		}, "endpoints"},
		{"deep paths of plain words", func(i int) string {
			// Three words per level, nothing collapses: the node budget
			// is spent before the endpoint cap.
			var b strings.Builder
			for l, x := 0, i*2654435761; l < 16; l, x = l+1, x/3 {
				b.WriteString("/" + strings.Repeat(string(rune('a'+x%3)), l+1))
			}
			return b.String()
		}, "nodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inv := New(Options{MaxEndpoints: 1000})
			for i := 0; i < 5000; i++ {
				observe(t, inv, "GET", tc.target(i), routing.SideLegacy, 200)
			}
			inv.mu.RLock()
			nodes, eps := inv.nodes, inv.endpoints
			inv.mu.RUnlock()
			if eps > 1000 || nodes > inv.maxNodes {
				t.Fatalf("%d endpoints, %d nodes (max %d)", eps, nodes, inv.maxNodes)
			}
			if tc.limit == "nodes" && nodes < inv.maxNodes-16 || tc.limit == "endpoints" && eps != 1000 {
				t.Fatalf("%d endpoints, %d nodes (max %d): the %s bound was not reached", eps, nodes, inv.maxNodes, tc.limit)
			}
			s := inv.Snapshot()
			var counted int64
			for _, e := range s.Endpoints {
				counted += e.Requests.Total()
			}
			if counted+s.Overflow.Requests.Total() != 5000 || s.Overflow.Requests.Total() == 0 {
				t.Fatalf("%d + %d overflow requests counted, want 5000", counted, s.Overflow.Requests.Total())
			}
		})
	}
}

// TestCoverageOverTime: the share of requests and endpoints served by the
// new side, per interval, as routes are flipped.
func TestCoverageOverTime(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	inv := New(Options{Now: clk.Now, Interval: time.Hour})
	hour := func(newPaths map[string]bool) {
		for _, p := range []string{"/a", "/b", "/c", "/d"} {
			side := routing.SideLegacy
			if newPaths[p] {
				side = routing.SideNew
			}
			for i := 0; i < 10; i++ {
				observe(t, inv, "GET", p, side, 200)
			}
		}
		clk.Advance(time.Hour)
		inv.Tick()
	}
	hour(nil)
	hour(map[string]bool{"/a": true})
	hour(map[string]bool{"/a": true, "/b": true, "/c": true})
	rep := BuildReport(inv.Snapshot(), nil)
	var got []string
	for _, p := range rep.Coverage.History {
		got = append(got, fmt.Sprintf("%s %d/%d %d/%d", p.Start.Format("15:04"), p.RequestsNew, p.Requests, p.EndpointsNew, p.Endpoints))
	}
	want := []string{"09:00 0/40 0/4", "10:00 10/40 1/4", "11:00 30/40 3/4"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history %q, want %q", got, want)
	}
	c := rep.Coverage
	// All time: 40 of 120 requests; now (the last interval): 3 of 4
	// endpoints are on new.
	if c.RequestsNewShare != 40.0/120 || c.EndpointsNew != 3 || c.Endpoints != 4 || c.RecentNewShare != 0.75 {
		t.Errorf("coverage %+v", c)
	}
	if u := rep.Unmigrated(); len(u) != 1 || u[0].Endpoint != "GET /d" {
		t.Errorf("unmigrated %v", u)
	}
}

// TestRestoreRoundTrip saves an inventory to a file and restores it into
// a new one, as a restart does: the same endpoints with the same counts,
// and new traffic adds to them.
func TestRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock(time.Date(2026, 3, 2, 9, 10, 0, 0, time.UTC))
	inv := New(Options{Now: clk.Now})
	feed := func(inv *Inventory) {
		for i := 0; i < 40; i++ {
			observe(t, inv, "GET", fmt.Sprintf("/blog/how-to-%d", i), routing.SideLegacy, 200) // collapses
			observe(t, inv, "GET", fmt.Sprintf("/course.php?id=%d", i%4), routing.SideLegacy, 200)
		}
		for i := 0; i < 40; i++ {
			observe(t, inv, "GET", fmt.Sprintf("/search.php?where=w%c%c", 'a'+i%26, 'a'+i/26), routing.SideLegacy, 200) // a collapsed key
		}
		observe(t, inv, "GET", "/index.php?page=export", routing.SideNew, 200)
	}
	feed(inv)
	before := inv.Snapshot()
	store := FileStore{Path: filepath.Join(t.TempDir(), "inv.json")}
	if err := store.Save(before); err != nil {
		t.Fatal(err)
	}
	loaded, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	again := New(Options{Now: clk.Now})
	if err := again.Restore(loaded); err != nil {
		t.Fatal(err)
	}
	after := again.Snapshot()
	a, b := mustJSON(t, before), mustJSON(t, after)
	if a != b {
		t.Fatalf("restored differs:\n%s\nvs\n%s", a, b)
	}
	// New traffic lands on the restored endpoints (no /search.php?where=
	// endpoint comes back: the key stays collapsed).
	feed(again)
	s := again.Snapshot()
	if n := len(s.Endpoints); n != len(before.Endpoints) {
		t.Errorf("%d endpoints after more traffic, %d before", n, len(before.Endpoints))
	}
	if e := endpoint(t, s, "GET /course.php"); e.Requests.Legacy != 80 {
		t.Errorf("course.php %+v", e.Requests)
	}
	if e := endpoint(t, s, "GET /blog/{slug}"); e.Requests.Legacy != 80 {
		t.Errorf("blog %+v", e.Requests)
	}
	if e := endpoint(t, s, "GET /search.php"); e.Requests.Legacy != 80 {
		t.Errorf("search %+v", e.Requests)
	}
	// A snapshot from an interval that has ended becomes history.
	clk.Advance(3 * time.Hour)
	later := New(Options{Now: clk.Now})
	if err := later.Restore(loaded); err != nil {
		t.Fatal(err)
	}
	if h := later.Snapshot().History; len(h) != 1 || h[0].Requests != loaded.Current.Total() || !h[0].Start.Equal(loaded.IntervalStart) {
		t.Errorf("history after a restart in a later interval: %+v", h)
	}
}

func mustJSON(t *testing.T, s *Snapshot) string {
	t.Helper()
	c := *s
	c.Taken = time.Time{}
	b, err := json.MarshalIndent(c, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMergeReplicas: two replicas that each saw part of the traffic merge
// into what one gateway seeing all of it learns (templates collapse on the
// union of values).
func TestMergeReplicas(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock(time.Date(2026, 3, 2, 9, 10, 0, 0, time.UTC))
	one, a, b := New(Options{Now: clk.Now}), New(Options{Now: clk.Now}), New(Options{Now: clk.Now})
	for i := 0; i < 60; i++ {
		target := fmt.Sprintf("/p/%c%c", 'a'+i%26, 'a'+i/26) // 60 words: collapses only in the union
		q := fmt.Sprintf("/index.php?page=pg%c%c", 'a'+i%26, 'a'+i/26)
		observe(t, one, "GET", target, routing.SideLegacy, 200)
		observe(t, one, "GET", q, routing.SideLegacy, 200)
		r := a
		if i%2 == 1 {
			r = b
		}
		observe(t, r, "GET", target, routing.SideLegacy, 200)
		observe(t, r, "GET", q, routing.SideLegacy, 200)
	}
	if n := a.Len(); n != 60 {
		t.Fatalf("replica a learnt %d endpoints, want 60 (30 words, 30 values: below the thresholds)", n)
	}
	merged, err := Merge(Options{Now: clk.Now}, a.Snapshot(), b.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustJSON(t, merged), mustJSON(t, one.Snapshot()); got != want {
		t.Fatalf("merged:\n%s\nwant:\n%s", got, want)
	}
}

func TestRestoreRejectsOtherVersions(t *testing.T) {
	t.Parallel()
	if err := New(Options{}).Restore(&Snapshot{Version: 99}); err == nil {
		t.Fatal("a snapshot of another version was restored")
	}
	bad := &Snapshot{Version: SnapshotVersion, Endpoints: []EndpointState{{Method: "GET", Path: "no-slash"}}}
	if err := New(Options{}).Restore(bad); err == nil || !strings.Contains(err.Error(), "endpoints[0]") {
		t.Fatalf("bad path restored: %v", err)
	}
}

// TestLongMethodCounted: a method of any length (the edge passes any
// token) is learnt, under its first maxMethod bytes, and every request
// counted (a method longer than the signature buffer used to be counted
// once in three: found by FuzzObserve).
func TestLongMethodCounted(t *testing.T) {
	t.Parallel()
	long := "GE" + strings.Repeat("0", 600) + "T"
	inv := New(Options{MaxEndpoints: 4})
	var p routing.Path
	if _, err := p.Parse([]byte("/Ա"), nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		inv.Observe(long, &p, nil, routing.SideLegacy, 200, time.Millisecond, 1)
	}
	s := inv.Snapshot()
	if len(s.Endpoints) != 1 || s.Endpoints[0].Requests.Total() != 3 {
		t.Fatalf("endpoints %+v, want one with 3 requests", s.Endpoints)
	}
	if m := s.Endpoints[0].Method; m != long[:maxMethod] {
		t.Errorf("learnt as method %q, want its first %d bytes", m, maxMethod)
	}
}
