package admin_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/store"
)

// tableYAML is the route table the admin tests run against: a new route,
// a legacy route with a canary, and a legacy route with no new side.
const tableYAML = `legacy: legacy
upstreams:
  legacy: {urls: ["http://127.0.0.1:1"]}
  courses-svc: {urls: ["http://127.0.0.1:2"]}
routes:
  - id: courses
    match: {prefix: /api/courses}
    side: new
    new: {upstream: courses-svc}
  - id: list
    match: {prefix: /api/list}
    side: legacy
    new: {upstream: courses-svc}
    canary: {percent: 5}
  - id: pages
    match: {prefix: /pages}
    side: legacy
`

// parseTable compiles y with the real compiler; it is closed with the test.
func parseTable(t *testing.T, y string) *routing.Table {
	t.Helper()
	tb, err := gateway.Parse("routes.yaml", []byte(y), gateway.LoadOptions{})
	if err != nil {
		t.Fatalf("parsing the test table: %v", err)
	}
	t.Cleanup(func() { _ = tb.Close() })
	return tb
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// memStore is a store.Store in memory that can be made to fail or to
// block in Update, and counts the updates it stored.
type memStore struct {
	mu      sync.Mutex
	state   store.State
	events  []store.Event
	seq     int
	saves   int
	fail    error
	block   chan struct{} // Update waits on it when set
	entered chan struct{} // Update signals it has started when set
	loadErr error
}

func (s *memStore) Load(context.Context) (store.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Clone(), s.loadErr
}

func (s *memStore) Update(_ context.Context, change func(*store.State) ([]store.Event, error)) (store.State, error) {
	s.mu.Lock()
	block, entered := s.block, s.entered
	s.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if block != nil {
		<-block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.state.Clone()
	ev, err := change(&next)
	if err != nil || len(ev) == 0 {
		return s.state.Clone(), err
	}
	s.saves++
	if s.fail != nil {
		return store.State{}, s.fail
	}
	next.Revision++
	s.state = next
	s.keep(ev)
	return next.Clone(), nil
}

func (s *memStore) Put(_ context.Context, st store.State, ev []store.Event) error {
	s.mu.Lock()
	block, entered := s.block, s.entered
	s.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if block != nil {
		<-block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves++
	if s.fail != nil {
		return s.fail
	}
	s.state = st.Clone()
	s.keep(ev)
	return nil
}

func (s *memStore) Record(_ context.Context, ev ...store.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep(ev)
	return nil
}

// keep appends events with sequential ids, keeping the last 500 (as a
// store keeps a bounded trail); s.mu is held.
func (s *memStore) keep(ev []store.Event) {
	for _, e := range ev {
		s.seq++
		e.ID = strconv.Itoa(s.seq)
		s.events = append(s.events, e)
	}
	if over := len(s.events) - 500; over > 0 {
		s.events = slices.Delete(s.events, 0, over)
	}
}

func (s *memStore) Audit(_ context.Context, q store.Query) ([]store.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	out := []store.Event{}
	for i := len(s.events) - 1; i >= 0 && len(out) < limit; i-- {
		e := s.events[i]
		if (q.Route == "" || e.Route == q.Route) && (q.Upstream == "" || e.Upstream == q.Upstream) && (q.Action == "" || e.Action == q.Action) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *memStore) Kind() string  { return "memory" }
func (s *memStore) Where() string { return "memory" }
func (s *memStore) Close() error  { return nil }

func (s *memStore) routes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, o := range s.state.Overrides {
		out = append(out, o.Route)
	}
	return out
}

func (s *memStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}

func (s *memStore) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

var errDiskFull = errors.New("disk full")

// logBuffer collects JSON log lines; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count is how many log lines contain every one of parts.
func (l *logBuffer) count(parts ...string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

func newLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewJSONHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

func newMetrics() *admin.Metrics { return admin.NewMetrics(prometheus.NewRegistry()) }

func pct(v float64) *float64 { return &v }

// value reads a gauge or a counter.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

// casOnly is a memStore seen as a shared store: only Update changes it.
type casOnly struct{ s *memStore }

func (c casOnly) Load(ctx context.Context) (store.State, error) { return c.s.Load(ctx) }
func (c casOnly) Update(ctx context.Context, f func(*store.State) ([]store.Event, error)) (store.State, error) {
	return c.s.Update(ctx, f)
}
func (c casOnly) Record(ctx context.Context, ev ...store.Event) error { return c.s.Record(ctx, ev...) }
func (c casOnly) Audit(ctx context.Context, q store.Query) ([]store.Event, error) {
	return c.s.Audit(ctx, q)
}
func (c casOnly) Kind() string  { return c.s.Kind() }
func (c casOnly) Where() string { return c.s.Where() }
func (c casOnly) Close() error  { return nil }
