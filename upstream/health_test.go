package upstream

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value reads a gauge or counter.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

// healthClock is a settable clock for Health.now.
type healthClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *healthClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *healthClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// healthUpstream builds an upstream of n instances with passive outlier
// detection and a fake clock. Ejections last an hour of real time, so the
// timers never fire: availability is read from the fake clock.
func healthUpstream(t *testing.T, n int, cfg HealthConfig) (*Upstream, *healthClock, *Metrics) {
	t.Helper()
	up := &Upstream{Name: "svc", Selector: &RoundRobin{}}
	for i := range n {
		in, err := ParseURL("http://127.0.0.1:" + string(rune('1'+i)) + "000")
		if err != nil {
			t.Fatal(err)
		}
		up.Instances = append(up.Instances, in)
	}
	m := NewMetrics(prometheus.NewRegistry())
	up.Health = NewHealth("svc", up.Instances, cfg, m, nil)
	clk := &healthClock{t: time.Unix(1_700_000_000, 0)}
	up.Health.now = clk.now
	t.Cleanup(up.Health.Stop)
	return up, clk, m
}

var passive = HealthConfig{ConsecutiveFailures: 3, BaseEjection: time.Hour, MaxEjection: 3 * time.Hour, MaxEjectedPercent: 50, FailureStatuses: []int{502, 503, 504}}

// picks returns how often each instance is picked in k picks.
func picks(up *Upstream, k int) map[*Instance]int {
	out := map[*Instance]int{}
	for range k {
		out[up.Pick(nil)]++
	}
	return out
}

// TestHealthEjection is a scenario: an instance failing three calls in a
// row is ejected and skipped; it comes back after BaseEjection on
// probation, where one failure ejects it again for twice as long.
func TestHealthEjection(t *testing.T) {
	t.Parallel()
	up, clk, m := healthUpstream(t, 3, passive)
	bad := up.Instances[1]
	for i := range 2 {
		up.Observe(bad, true, true)
		if n := picks(up, 30)[bad]; n != 10 {
			t.Fatalf("after %d failures the instance got %d of 30 picks, want 10 (not ejected yet)", i+1, n)
		}
	}
	up.Observe(bad, true, true)
	if n := picks(up, 30)[bad]; n != 0 {
		t.Fatalf("ejected instance picked %d times", n)
	}
	if got := bad.HealthState(); got.State != "ejected" || got.Ejections != 1 {
		t.Fatalf("health %+v, want ejected once", got)
	}
	if v := value(t, m.InstanceHealthy.WithLabelValues("svc", bad.Addr)); v != 0 {
		t.Errorf("healthy gauge %v while ejected", v)
	}
	if v := value(t, m.Ejections.WithLabelValues("svc", bad.Addr)); v != 1 {
		t.Errorf("ejections counter %v, want 1", v)
	}
	clk.advance(time.Hour + time.Second)
	if n := picks(up, 30)[bad]; n != 10 {
		t.Fatalf("back after the ejection: %d of 30 picks, want 10", n)
	}
	// Probation: one failure is enough, and the period grows.
	up.Observe(bad, true, true)
	st := bad.HealthState()
	if st.State != "ejected" || st.Ejections != 2 {
		t.Fatalf("health %+v after a failure on probation, want ejected a second time", st)
	}
	if want := clk.now().Add(2 * time.Hour); !st.EjectedUntil.Equal(want.UTC()) {
		t.Errorf("ejected until %v, want %v (twice the base)", st.EjectedUntil, want)
	}
	// Capped at MaxEjection.
	clk.advance(2*time.Hour + time.Second)
	up.Observe(bad, true, true) // 3h
	clk.advance(3*time.Hour + time.Second)
	up.Observe(bad, true, true) // 4h, capped
	if st := bad.HealthState(); !st.EjectedUntil.Equal(clk.now().Add(3 * time.Hour).UTC()) {
		t.Errorf("ejected until %v, want the 3h cap", st.EjectedUntil)
	}
	// A success clears probation: one failure no longer ejects.
	clk.advance(3*time.Hour + time.Second)
	up.Observe(bad, false, false)
	up.Observe(bad, true, true)
	if st := bad.HealthState(); st.State != "healthy" || st.ConsecutiveFailures != 1 {
		t.Errorf("health %+v, want healthy with one failure", st)
	}
}

// TestHealthMaxEjectedShare: never more than the configured share of the
// instances is out at once, but always at least one may be.
func TestHealthMaxEjectedShare(t *testing.T) {
	t.Parallel()
	up, _, _ := healthUpstream(t, 3, passive) // 50% of 3: one
	for _, in := range up.Instances {
		for range 3 {
			up.Observe(in, true, true)
		}
	}
	out := 0
	for _, in := range up.Instances {
		if in.HealthState().State == "ejected" {
			out++
		}
	}
	if out != 1 {
		t.Fatalf("%d instances ejected, want 1 (50%% of 3)", out)
	}
	two, _, _ := healthUpstream(t, 2, HealthConfig{ConsecutiveFailures: 1, BaseEjection: time.Hour, MaxEjection: time.Hour, MaxEjectedPercent: 10})
	up2 := two.Instances[0]
	two.Observe(up2, true, true)
	if up2.HealthState().State != "ejected" {
		t.Fatal("10% of 2 instances must still allow one ejection")
	}
}

// TestHealthBreakerAttribution: a failure counts against the upstream's
// breaker only when no other instance is known good.
func TestHealthBreakerAttribution(t *testing.T) {
	t.Parallel()
	up, _, _ := healthUpstream(t, 3, HealthConfig{BaseEjection: time.Hour, MaxEjection: time.Hour, MaxEjectedPercent: 50})
	a, b, c := up.Instances[0], up.Instances[1], up.Instances[2]
	if o := up.Observe(a, true, true); o != Excluded {
		t.Fatalf("one failing instance of three: outcome %v, want Excluded", o)
	}
	up.Observe(b, true, true)
	if o := up.Observe(c, true, true); o != Failed {
		t.Fatalf("every instance failing: outcome %v, want Failed", o)
	}
	if o := up.Observe(a, false, false); o != Succeeded {
		t.Fatalf("success: %v", o)
	}
	if o := up.Observe(b, true, true); o != Excluded {
		t.Fatalf("a known good again: %v, want Excluded", o)
	}
	// A status the breaker counts but the health does not (a 500 with
	// default statuses) is the breaker's.
	if o := up.Observe(b, false, true); o != Failed {
		t.Fatalf("breaker-only failure: %v, want Failed", o)
	}
	// Without health (one instance), outcomes pass through.
	single := &Upstream{Name: "one", Selector: &RoundRobin{}, Instances: []*Instance{{Addr: "x"}}}
	if o := single.Observe(single.Instances[0], true, true); o != Failed {
		t.Fatalf("single instance: %v", o)
	}
}

// TestPickAvoidsAndPanics: a retry avoids the instance that failed while
// another is available; with every instance unavailable, all are used
// (panic mode) rather than none.
func TestPickAvoidsAndPanics(t *testing.T) {
	t.Parallel()
	up, _, _ := healthUpstream(t, 2, passive)
	a, b := up.Instances[0], up.Instances[1]
	for range 10 {
		if got := up.Pick(a); got != b {
			t.Fatalf("Pick(avoid a) = %v", got.Addr)
		}
	}
	a.health.checkDown.Store(true)
	b.health.checkDown.Store(true)
	seen := picks(up, 10)
	if seen[a] == 0 || seen[b] == 0 {
		t.Fatalf("panic mode picks %v, want both", seen)
	}
	if got := up.Pick(a); got != b {
		t.Fatalf("panic mode Pick(avoid a) = %v", got.Addr)
	}
}
