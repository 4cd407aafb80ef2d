package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/store"
)

var ctx = context.Background()

func stateFile(t *testing.T, ovs ...routing.Override) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"overrides": ovs})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOpenOverrides: the one way to build the live set. A missing state
// file is no overrides; a file that cannot be read or holds garbage or a
// bad override is an error (starting without on-call's decisions would
// silently undo them), and the file is left exactly as it was.
func TestOpenOverrides(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	good := stateFile(t,
		routing.Override{Route: "courses", Side: "legacy", Reason: "500s", By: "alice", At: at},
		routing.Override{Route: "list", Percent: pct(20), Reason: "ramp", By: "bob", At: at})
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, path string) // nil: no file
		wantErr string                          // a substring; "" for success
		want    []string                        // routes with an override
	}{
		{"missing file is none", nil, "", nil},
		{"saved overrides", func(t *testing.T, p string) { write(t, p, good) }, "", []string{"courses", "list"}},
		{"empty list", func(t *testing.T, p string) { write(t, p, `{"overrides": []}`) }, "", nil},
		{"garbage", func(t *testing.T, p string) { write(t, p, "{not json") },
			"loading overrides: {{path}}: invalid character 'n' looking for beginning of object key string", nil},
		{"truncated", func(t *testing.T, p string) { write(t, p, good[:len(good)/2]) },
			"loading overrides: {{path}}: unexpected end of JSON input", nil},
		{"unreadable (a directory)", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "loading overrides: read {{path}}: is a directory", nil},
		{"bad side", func(t *testing.T, p string) {
			write(t, p, stateFile(t, routing.Override{Route: "courses", Side: "sideways", Reason: "x"}))
		}, `loading overrides: route courses: bad side "sideways": legacy or new`, nil},
		{"neither side nor percent", func(t *testing.T, p string) {
			write(t, p, stateFile(t, routing.Override{Route: "courses", Reason: "x"}))
		}, `loading overrides: route courses: an override sets side or percent`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "state.json")
			var before []byte
			if tc.setup != nil {
				tc.setup(t, path)
				before, _ = os.ReadFile(path)
			}
			log, _ := newLogger()
			m := newMetrics()
			o, err := admin.OpenOverrides(admin.OverridesOptions{Store: &store.File{Path: path}, Metrics: m, Logger: log})
			if tc.wantErr != "" {
				want := strings.ReplaceAll(tc.wantErr, "{{path}}", path)
				if err == nil || err.Error() != want {
					t.Fatalf("OpenOverrides error\n got: %v\nwant: %s", err, want)
				}
				if o != nil {
					t.Error("OpenOverrides returned overrides with its error")
				}
				after, _ := os.ReadFile(path)
				if string(after) != string(before) {
					t.Errorf("the state file changed:\n%s", after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ov := range o.List() {
				got = append(got, ov.Route)
				if o.Get(ov.Route) == nil {
					t.Errorf("Get(%q) = nil", ov.Route)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("loaded %q, want %q", got, tc.want)
			}
			if n := value(m.Overrides); n != float64(len(tc.want)) {
				t.Errorf("strangler_overrides = %v", n)
			}
			if tc.setup == nil {
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Errorf("opening created the state file: %v", err)
				}
			}
		})
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// openMem opens overrides over a memory store with a settable clock.
func openMem(t *testing.T, s *memStore, table func() *routing.Table) (*admin.Overrides, *clock, *logBuffer, *admin.Metrics) {
	t.Helper()
	log, lb := newLogger()
	m := newMetrics()
	o, err := admin.OpenOverrides(admin.OverridesOptions{Store: s, Table: table, Metrics: m, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	o.SetClock(c.Now)
	return o, c, lb, m
}

// TestOverridesSetDelete: Set and Delete persist, then publish, and
// return what they replaced.
func TestOverridesSetDelete(t *testing.T) {
	t.Parallel()
	s := &memStore{}
	o, _, _, m := openMem(t, s, nil)
	prev, err := o.Set(ctx, routing.Override{Route: "courses", Side: "legacy", Reason: "500s", By: "alice"}, "side")
	if err != nil || prev != nil {
		t.Fatalf("first Set = %v, %v", prev, err)
	}
	if got := o.Get("courses"); got == nil || got.Side != "legacy" || got.By != "alice" {
		t.Fatalf("Get = %+v", got)
	}
	prev, err = o.Set(ctx, routing.Override{Route: "courses", Percent: pct(10), Reason: "ramp", By: "bob"}, "side")
	if err != nil || prev == nil || prev.Side != "legacy" {
		t.Fatalf("second Set returned %+v, %v; want the legacy override", prev, err)
	}
	if _, err := o.Set(ctx, routing.Override{Route: "list", Side: "new", Reason: "x"}, "side"); err != nil {
		t.Fatal(err)
	}
	if got := s.routes(); !slices.Equal(got, []string{"courses", "list"}) {
		t.Errorf("stored %q", got)
	}
	if n := value(m.Overrides); n != 2 {
		t.Errorf("strangler_overrides = %v", n)
	}
	prev, err = o.Delete(ctx, "courses", "alice", "")
	if err != nil || prev == nil || prev.By != "bob" {
		t.Errorf("Delete = %+v, %v", prev, err)
	}
	if o.Get("courses") != nil {
		t.Error("deleted override still live")
	}
	if prev, err := o.Delete(ctx, "courses", "alice", ""); err != nil || prev != nil {
		t.Errorf("second Delete = %+v, %v; want nil, nil", prev, err)
	}
	if got := s.routes(); !slices.Equal(got, []string{"list"}) {
		t.Errorf("stored %q", got)
	}
	if n := value(m.Overrides); n != 1 {
		t.Errorf("strangler_overrides = %v", n)
	}
	// A bad override is refused before anything is stored.
	saves := s.count()
	if _, err := o.Set(ctx, routing.Override{Route: "pages", Side: "both"}, "side"); err == nil || err.Error() != `bad side "both": legacy or new` {
		t.Errorf("Set(bad side) = %v", err)
	}
	if s.count() != saves || o.Get("pages") != nil {
		t.Error("a bad override was stored or published")
	}
}

// TestOverridesSaveFails: an override is never live before it is
// durable: when Save fails the live set is unchanged, for Set and Delete,
// and nothing is audited.
func TestOverridesSaveFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		change  func(o *admin.Overrides) error
		courses string   // the live side of courses after the change, "" none
		stored  []string // what the store keeps once it works again
	}{
		{"set replaces", func(o *admin.Overrides) error {
			_, err := o.Set(ctx, routing.Override{Route: "courses", Side: "new", Reason: "y"}, "side")
			return err
		}, "new", []string{"courses"}},
		{"set adds", func(o *admin.Overrides) error {
			_, err := o.Set(ctx, routing.Override{Route: "list", Side: "new", Reason: "y"}, "side")
			return err
		}, "legacy", []string{"courses", "list"}},
		{"delete", func(o *admin.Overrides) error { _, err := o.Delete(ctx, "courses", "alice", ""); return err }, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &memStore{}
			o, _, lb, m := openMem(t, s, nil)
			if _, err := o.Set(ctx, routing.Override{Route: "courses", Side: "legacy", Reason: "x"}, "side"); err != nil {
				t.Fatal(err)
			}
			s.setFail(errDiskFull)
			err := tc.change(o)
			var np *admin.NotPersistedError
			if !errors.As(err, &np) || !errors.Is(err, errDiskFull) {
				t.Fatalf("error = %v, want a NotPersistedError wrapping the store's", err)
			}
			// The lever works without the disk.
			got := o.Get("courses")
			if tc.courses == "" && got != nil || tc.courses != "" && (got == nil || got.Side != tc.courses) {
				t.Errorf("live courses = %+v, want side %q", got, tc.courses)
			}
			if got := s.routes(); !slices.Equal(got, []string{"courses"}) {
				t.Errorf("stored %q while the store fails", got)
			}
			if value(m.Persisted) != 0 || value(m.PersistFailures) != 1 {
				t.Errorf("persisted %v, failures %v; want 0 and 1", value(m.Persisted), value(m.PersistFailures))
			}
			// Retried every tick, logged once.
			_ = o.Expire(ctx)
			_ = o.Expire(ctx)
			if n := lb.count("overrides not persisted"); n != 1 {
				t.Errorf("logged %d times, want once:\n%s", n, lb)
			}
			s.setFail(nil)
			_ = o.Expire(ctx)
			if got := s.routes(); !slices.Equal(got, tc.stored) {
				t.Errorf("stored %q after the store recovered, want %q", got, tc.stored)
			}
			if value(m.Persisted) != 1 || lb.count("overrides persisted again") != 1 {
				t.Errorf("persisted %v after recovery; log:\n%s", value(m.Persisted), lb)
			}
		})
	}
}

// TestOverridesPublishAfterSave: while Save runs, readers see the old set
// without waiting (Get takes no lock); the new one is live once Save
// returns.
func TestOverridesPublishAfterSave(t *testing.T) {
	t.Parallel()
	s := &memStore{}
	o, _, _, _ := openMem(t, s, nil)
	if _, err := o.Set(ctx, routing.Override{Route: "courses", Side: "legacy", Reason: "x"}, "side"); err != nil {
		t.Fatal(err)
	}
	block, entered := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.block, s.entered = block, entered
	s.mu.Unlock()
	done := make(chan error)
	go func() {
		_, err := o.Set(ctx, routing.Override{Route: "courses", Side: "new", Reason: "y"}, "side")
		done <- err
	}()
	<-entered
	// Save is in progress and holds the overrides' lock.
	for i := 0; i < 100; i++ {
		if got := o.Get("courses"); got == nil || got.Side != "legacy" {
			t.Fatalf("during Save, Get = %+v; want the old override", got)
		}
	}
	if l := o.List(); len(l) != 1 || l[0].Side != "legacy" {
		t.Fatalf("during Save, List = %+v", l)
	}
	close(block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := o.Get("courses"); got == nil || got.Side != "new" {
		t.Errorf("after Save, Get = %+v", got)
	}
}

// TestOverridesGetNilSafe: a gateway without overrides has a nil set.
func TestOverridesGetNilSafe(t *testing.T) {
	t.Parallel()
	var o *admin.Overrides
	if o.Get("courses") != nil {
		t.Error("nil Overrides returned an override")
	}
}

// TestOverridesExpire: an override stops acting the moment its TTL
// passes; Expire then drops it from the store, audits it once and counts
// it; a failed save keeps it (inactive) and audits nothing until the
// drop succeeds. Any other change drops expired entries the same way.
func TestOverridesExpire(t *testing.T) {
	t.Parallel()
	s := &memStore{}
	o, clk, lb, m := openMem(t, s, nil)
	now := clk.Now()
	if _, err := o.Set(ctx, routing.Override{Route: "courses", Side: "legacy", Reason: "incident 42", By: "alice", At: now, Expires: now.Add(time.Hour)}, "side"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Set(ctx, routing.Override{Route: "list", Percent: pct(50), Reason: "ramp", By: "bob", At: now}, "side"); err != nil {
		t.Fatal(err)
	}
	expireOK := func() float64 { return value(m.Mutations.WithLabelValues("expire", "ok")) }

	clk.advance(59 * time.Minute)
	_ = o.Expire(ctx)
	if o.Get("courses") == nil || lb.count(`"action":"expire"`) != 0 {
		t.Fatal("expired early")
	}
	saves := s.count()

	clk.advance(time.Minute) // exactly at Expires
	if o.Get("courses") != nil {
		t.Error("Get returns an expired override")
	}
	if l := o.List(); len(l) != 1 || l[0].Route != "list" {
		t.Errorf("List = %+v", l)
	}
	s.setFail(errDiskFull)
	_ = o.Expire(ctx)
	// The expiry takes effect (and is audited) whatever the disk says;
	// the failed save is logged once and retried.
	if lb.count(`"action":"expire"`) != 1 || expireOK() != 1 {
		t.Errorf("an expiry that took effect was not audited once:\n%s", lb)
	}
	if lb.count(`overrides not persisted`, `disk full`) != 1 {
		t.Errorf("failed save not logged once:\n%s", lb)
	}
	if o.Get("courses") != nil {
		t.Error("Get returns an expired override after a failed save")
	}

	s.setFail(nil)
	_ = o.Expire(ctx)
	_ = o.Expire(ctx)
	if got := s.routes(); !slices.Equal(got, []string{"list"}) {
		t.Errorf("stored %q", got)
	}
	if n := lb.count(`"audit"`, `"action":"expire"`, `"route":"courses"`, `"by":"ttl"`, `"previous":"side legacy until 2026-03-01T11:00:00Z"`, `"reason":"incident 42"`); n != 1 {
		t.Errorf("expiry audited %d times, want once:\n%s", n, lb)
	}
	if expireOK() != 1 {
		t.Errorf("expire ok = %v", expireOK())
	}
	if got := s.count(); got != saves+2 {
		t.Errorf("saves = %d, want %d (one failed, its retry; nothing when nothing expired)", got, saves+2)
	}
	if n := value(m.Overrides); n != 1 {
		t.Errorf("strangler_overrides = %v", n)
	}

	// Through Set: another override expires and is dropped by an
	// unrelated change.
	if _, err := o.Set(ctx, routing.Override{Route: "pages", Side: "new", Reason: "short", At: clk.Now(), Expires: clk.Now().Add(time.Minute)}, "side"); err != nil {
		t.Fatal(err)
	}
	clk.advance(2 * time.Minute)
	if _, err := o.Delete(ctx, "list", "alice", ""); err != nil {
		t.Fatal(err)
	}
	if got := s.routes(); len(got) != 0 {
		t.Errorf("stored %q, want nothing", got)
	}
	if n := lb.count(`"action":"expire"`, `"route":"pages"`); n != 1 || expireOK() != 2 {
		t.Errorf("pages expiry audited %d times (counter %v)", n, expireOK())
	}
}

// TestOverridesConcurrent: readers and writers at once (run with -race).
func TestOverridesConcurrent(t *testing.T) {
	t.Parallel()
	o, _, _, _ := openMem(t, &memStore{}, nil)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				side := []string{"legacy", "new"}[i%2]
				if _, err := o.Set(ctx, routing.Override{Route: "courses", Side: side, Reason: "x"}, "side"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if ov := o.Get("courses"); ov != nil && ov.Side != "legacy" && ov.Side != "new" {
					t.Errorf("torn override %+v", ov)
				}
				_ = o.List()
			}
		}()
	}
	wg.Wait()
}

// TestReportOrphans: overrides naming a route the table lacks, or a
// route without a new side, are logged and counted; changes report
// against the serving table too; expired overrides are not orphans.
func TestReportOrphans(t *testing.T) {
	t.Parallel()
	tb := parseTable(t, tableYAML)
	s := &memStore{}
	o, clk, lb, m := openMem(t, s, func() *routing.Table { return tb })
	orphans := func() float64 { return value(m.OverrideOrphans) }

	if _, err := o.Set(ctx, routing.Override{Route: "courses", Side: "legacy", Reason: "x"}, "side"); err != nil {
		t.Fatal(err)
	}
	if orphans() != 0 {
		t.Errorf("orphans = %v", orphans())
	}
	if _, err := o.Set(ctx, routing.Override{Route: "gone", Side: "legacy", Reason: "x"}, "side"); err != nil {
		t.Fatal(err)
	}
	if orphans() != 1 || lb.count(`"override names a route routes.yaml no longer has"`, `"route":"gone"`) != 1 {
		t.Errorf("orphans = %v\n%s", orphans(), lb)
	}
	if _, err := o.Set(ctx, routing.Override{Route: "pages", Side: "new", Reason: "x", At: clk.Now(), Expires: clk.Now().Add(time.Minute)}, "side"); err != nil {
		t.Fatal(err)
	}
	if orphans() != 2 || lb.count(`"override is inactive: the route has no new side"`, `"route":"pages"`) != 1 {
		t.Errorf("orphans = %v\n%s", orphans(), lb)
	}
	for _, tc := range []struct {
		route string
		want  bool
	}{{"courses", false}, {"gone", true}, {"pages", true}, {"list", false}} {
		if got := admin.Inapplicable(tb, &routing.Override{Route: tc.route}); got != tc.want {
			t.Errorf("Inapplicable(%s) = %v", tc.route, got)
		}
	}

	// A new table has the route back: the override is no orphan there.
	withGone := parseTable(t, tableYAML+"  - id: gone\n    match: {prefix: /gone}\n    side: legacy\n    new: {upstream: courses-svc}\n")
	o.ReportOrphans(withGone)
	if orphans() != 1 {
		t.Errorf("against the new table, orphans = %v, want 1 (pages)", orphans())
	}
	clk.advance(time.Minute) // pages expires
	o.ReportOrphans(withGone)
	if orphans() != 0 {
		t.Errorf("with pages expired, orphans = %v, want 0", orphans())
	}
}
