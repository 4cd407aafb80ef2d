// Package reqstats reads the proxy's request metrics per route and side
// (strangler_requests_total, strangler_fallbacks_total and
// strangler_request_duration_seconds) as counts, error rates and
// quantiles: the figures GET /admin/stats shows (package gateway) and the
// migration plans' gates and triggers judge (package migration). It reads
// the collectors, never the request path.
package reqstats

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/strangler/strangler/proxy"
)

// SideStats are one side of one route as the request metrics count it
// (strangler_requests_total and strangler_request_duration_seconds):
// totals since start, or, after Sub, over a window.
type SideStats struct {
	Requests uint64 `json:"requests"`
	// Errors are 5xx answers: the upstream's, and the gateway's own (502,
	// 503, 504 when an upstream fails).
	Errors uint64 `json:"errors"`
	// Fallbacks (side new only) are requests the new side could not serve
	// and legacy served instead (strangler_fallbacks_total): new-side
	// failures the client never saw, counted among legacy's Requests.
	Fallbacks uint64 `json:"-"`
	// Buckets are the duration histogram's cumulative counts, one per
	// proxy.DurationBuckets bound; Count is every observation.
	Buckets []uint64 `json:"-"`
	Count   uint64   `json:"-"`
}

// Read reads the proxy's request metrics of every route that has seen
// traffic: route id -> side -> stats. It reads the collectors, not the
// request path, so it costs the request path nothing.
func Read(m *proxy.Metrics) map[string]map[string]*SideStats {
	out := map[string]map[string]*SideStats{}
	get := func(route, side string) *SideStats {
		r := out[route]
		if r == nil {
			r = map[string]*SideStats{}
			out[route] = r
		}
		s := r[side]
		if s == nil {
			s = &SideStats{Buckets: make([]uint64, len(proxy.DurationBuckets))}
			r[side] = s
		}
		return s
	}
	each(m.Requests, func(l map[string]string, d *dto.Metric) {
		n := uint64(d.GetCounter().GetValue())
		s := get(l["route"], l["side"])
		s.Requests += n
		if c := l["code"]; len(c) == 3 && c[0] == '5' {
			s.Errors += n
		}
	})
	each(m.Fallbacks, func(l map[string]string, d *dto.Metric) {
		get(l["route"], "new").Fallbacks += uint64(d.GetCounter().GetValue())
	})
	each(m.Duration, func(l map[string]string, d *dto.Metric) {
		s := get(l["route"], l["side"])
		h := d.GetHistogram()
		s.Count = h.GetSampleCount()
		for i, b := range h.GetBucket() {
			if i < len(s.Buckets) {
				s.Buckets[i] = b.GetCumulativeCount()
			}
		}
	})
	return out
}

// each calls f with every series of c and its labels.
func each(c prometheus.Collector, f func(labels map[string]string, d *dto.Metric)) {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	for mt := range ch {
		var d dto.Metric
		if mt.Write(&d) != nil {
			continue
		}
		l := make(map[string]string, len(d.GetLabel()))
		for _, p := range d.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		f(l, &d)
	}
}

// Sub returns s minus an earlier reading of the same counters (nil: none),
// the counts of the window between them.
func (s *SideStats) Sub(earlier *SideStats) *SideStats {
	out := &SideStats{Requests: s.Requests, Errors: s.Errors, Fallbacks: s.Fallbacks, Count: s.Count, Buckets: append([]uint64(nil), s.Buckets...)}
	if earlier == nil {
		return out
	}
	sub := func(a, b uint64) uint64 {
		if b > a { // counters never go down; a reset would
			return a
		}
		return a - b
	}
	out.Requests, out.Errors, out.Count = sub(s.Requests, earlier.Requests), sub(s.Errors, earlier.Errors), sub(s.Count, earlier.Count)
	out.Fallbacks = sub(s.Fallbacks, earlier.Fallbacks)
	for i := range out.Buckets {
		if i < len(earlier.Buckets) {
			out.Buckets[i] = sub(out.Buckets[i], earlier.Buckets[i])
		}
	}
	return out
}

// ErrorRate is the share of answers that were 5xx (0 without requests).
func (s *SideStats) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

// Quantile estimates the q-quantile (0..1) of the durations in seconds
// the way Prometheus' histogram_quantile does: linearly inside the bucket
// that holds it. NaN without observations; above the last bound, the last
// bound (the histogram knows no more).
func (s *SideStats) Quantile(q float64) float64 {
	if s.Count == 0 {
		return math.NaN()
	}
	rank := q * float64(s.Count)
	var prevCount uint64
	prevBound := 0.0
	for i, c := range s.Buckets {
		if float64(c) >= rank {
			bound := proxy.DurationBuckets[i]
			in := c - prevCount
			if in == 0 {
				return bound
			}
			return prevBound + (bound-prevBound)*(rank-float64(prevCount))/float64(in)
		}
		prevCount, prevBound = c, proxy.DurationBuckets[i]
	}
	return proxy.DurationBuckets[len(proxy.DurationBuckets)-1]
}
