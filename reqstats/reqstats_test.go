package reqstats

import (
	"math"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strangler/strangler/proxy"
)

// TestRouteStats: the per-route, per-side reading of the request metrics
// counts requests and 5xx answers, and its p99 is histogram_quantile's;
// Sub gives a window's counts.
func TestRouteStats(t *testing.T) {
	t.Parallel()
	m := proxy.NewMetrics(prometheus.NewRegistry())
	if got := Read(m); len(got) != 0 {
		t.Fatalf("stats before any request: %v", got)
	}
	// What the proxy counts per answer: strangler_requests_total and
	// strangler_request_duration_seconds.
	observe := func(route, side string, code int, seconds float64) {
		m.Requests.WithLabelValues(route, side, strconv.Itoa(code)).Inc()
		m.Duration.WithLabelValues(route, side).Observe(seconds)
	}
	// 98 fast legacy answers (3 ms) and two slow ones (400 ms), one a 503.
	for range 98 {
		observe("courses", "legacy", 200, 0.003)
	}
	observe("courses", "legacy", 200, 0.4)
	observe("courses", "legacy", 503, 0.4)
	observe("courses", "new", 500, 0.02)
	observe("courses", "new", 404, 0.02)
	observe("other", "new", 200, 0.001)

	early := Read(m)
	l, n := early["courses"]["legacy"], early["courses"]["new"]
	if l == nil || n == nil || len(early) != 2 {
		t.Fatalf("stats = %v", early)
	}
	if l.Requests != 100 || l.Errors != 1 || l.Count != 100 || l.ErrorRate() != 0.01 {
		t.Errorf("legacy = %+v error rate %v", l, l.ErrorRate())
	}
	if n.Requests != 2 || n.Errors != 1 || n.ErrorRate() != 0.5 {
		t.Errorf("new = %+v", n)
	}
	// The 99th of 100 answers is in the (0.25, 0.5] bucket, which holds 2:
	// rank 99 is half-way through it.
	if p := l.Quantile(0.99); math.Abs(p-0.375) > 1e-9 {
		t.Errorf("legacy p99 = %v, want 0.375", p)
	}
	// p50 is in (0.0025, 0.005], which holds 98 answers.
	if p := l.Quantile(0.5); math.Abs(p-(0.0025+0.0025*50/98)) > 1e-9 {
		t.Errorf("legacy p50 = %v", p)
	}

	for range 10 {
		observe("courses", "new", 200, 130) // beyond the last bound
	}
	w := Read(m)["courses"]["new"].Sub(n)
	if w.Requests != 10 || w.Errors != 0 || w.Count != 10 {
		t.Errorf("window = %+v", w)
	}
	if p := w.Quantile(0.99); p != proxy.DurationBuckets[len(proxy.DurationBuckets)-1] {
		t.Errorf("p99 beyond the last bound = %v, want the last bound", p)
	}
	if p := (&SideStats{Buckets: make([]uint64, len(proxy.DurationBuckets))}).Quantile(0.99); !math.IsNaN(p) {
		t.Errorf("p99 of nothing = %v, want NaN", p)
	}
	if got := n.Sub(nil); got.Requests != 2 {
		t.Errorf("Sub(nil) = %+v", got)
	}
	// A reading older than a counter reset never goes negative.
	if got := n.Sub(w); got.Requests != 2 || got.Count != 2 {
		t.Errorf("Sub of a larger reading = %+v", got)
	}
}
