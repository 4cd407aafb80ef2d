package gateway

import (
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/strangler/strangler/reqstats"
)

// The window GET /admin/stats reports: readings of the request metrics
// are taken when it is asked (at most one kept per statsEvery), and the
// window runs from the newest reading at least statsWindow old (or the
// oldest one) to now. Nothing runs in the background.
const (
	statsWindow = 5 * time.Minute
	statsEvery  = 10 * time.Second
)

type statsReading struct {
	at     time.Time
	routes map[string]map[string]*reqstats.SideStats
}

// routeStats serves GET /admin/stats: each route's traffic share, error
// rate and p99 per side, over the recent window and since start, read
// from the gateway's own request metrics; and the reload's health.
type routeStats struct {
	rt       *Router
	now      func() time.Time
	mu       sync.Mutex
	readings []statsReading // oldest first
	start    time.Time
}

func newRouteStats(rt *Router, now func() time.Time) *routeStats {
	s := &routeStats{rt: rt, now: now, start: now()}
	s.readings = []statsReading{{at: s.start, routes: reqstats.Read(rt.metrics.Proxy)}}
	return s
}

// window takes a reading now and returns it with the reading the window
// starts from.
func (s *routeStats) window() (cur, base statsReading) {
	cur = statsReading{at: s.now(), routes: reqstats.Read(s.rt.metrics.Proxy)}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := 0
	for i, r := range s.readings {
		if cur.at.Sub(r.at) >= statsWindow {
			b = i
		}
	}
	s.readings = s.readings[b:]
	base = s.readings[0]
	if last := s.readings[len(s.readings)-1]; cur.at.Sub(last.at) >= statsEvery {
		s.readings = append(s.readings, cur)
	}
	return cur, base
}

// SideView is one side of a route in GET /admin/stats.
type SideView struct {
	Requests  uint64  `json:"requests"`
	Errors    uint64  `json:"errors"`     // 5xx answers
	ErrorRate float64 `json:"error_rate"` // errors / requests, 0..1
	// P99ms is the 99th percentile duration estimated from the histogram
	// buckets (as histogram_quantile does); null without requests.
	P99ms *float64 `json:"p99_ms"`
	// Share is this side's share of the route's requests, 0..1.
	Share float64 `json:"share"`
}

// RouteStatsView is one route in GET /admin/stats: by side ("legacy",
// "new"), over the window and since start.
type RouteStatsView struct {
	Route  string              `json:"route"`
	Window map[string]SideView `json:"window"`
	Total  map[string]SideView `json:"total"`
}

// ReloadHealth is the last reload of the routes file.
type ReloadHealth struct {
	Generation int64     `json:"generation"`
	At         time.Time `json:"at,omitzero"`
	// Result is "ok" or "error" ("" before any reload).
	Result string `json:"result,omitempty"`
	// Error is the first problem of a rejected file, Problems how many.
	Error    string `json:"error,omitempty"`
	Problems int    `json:"problems,omitempty"`
	// LastOK is when a reload last succeeded.
	LastOK time.Time `json:"last_ok,omitzero"`
}

func (s *routeStats) serve(*http.Request) (any, error) {
	cur, base := s.window()
	t := s.rt.Table()
	ids := make([]string, 0, len(t.Routes))
	seen := map[string]bool{}
	for _, r := range t.Routes {
		ids = append(ids, r.ID)
		seen[r.ID] = true
	}
	for id := range cur.routes {
		if !seen[id] {
			ids = append(ids, id) // routes a reload removed, the default route
		}
	}
	out := make([]RouteStatsView, 0, len(ids))
	for _, id := range ids {
		v := RouteStatsView{Route: id, Window: map[string]SideView{}, Total: map[string]SideView{}}
		var win, tot uint64
		for side, st := range cur.routes[id] {
			w := st.Sub(base.routes[id][side])
			v.Window[side], v.Total[side] = sideView(w), sideView(st)
			win += w.Requests
			tot += st.Requests
		}
		share(v.Window, win)
		share(v.Total, tot)
		out = append(out, v)
	}
	return map[string]any{
		"window_seconds": math.Round(cur.at.Sub(base.at).Seconds()),
		"since":          s.start.UTC(),
		"routes":         out,
		"reload":         s.rt.ReloadHealth(),
		"store":          map[string]string{"kind": "file", "where": t.Server.AdminStateFile},
	}, nil
}

func sideView(s *reqstats.SideStats) SideView {
	v := SideView{Requests: s.Requests, Errors: s.Errors, ErrorRate: s.ErrorRate()}
	if p := s.Quantile(0.99); !math.IsNaN(p) {
		ms := math.Round(p*1e6) / 1e3
		v.P99ms = &ms
	}
	return v
}

func share(m map[string]SideView, total uint64) {
	if total == 0 {
		return
	}
	for k, v := range m {
		v.Share = float64(v.Requests) / float64(total)
		m[k] = v
	}
}
