package migration

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/strangler/strangler/proxy"
	"github.com/strangler/strangler/reqstats"
	"github.com/strangler/strangler/routing"
)

// The plan's evidence are the gateway's own request counters, per route
// and side (reqstats.Read: strangler_requests_total, the
// duration histogram, strangler_fallbacks_total). In a fleet every replica
// publishes its counters of the routes with a plan to the shared store
// (statsKind, one document per replica, every publishEvery); the
// replica holding the plans lease reads them all, takes each replica's
// increase since its previous reading (a replica that restarted starts
// again from zero) and adds the increases up into fleet counters that
// only grow. A window is the difference between two readings of those.

// statsKind names the replicas' documents in the store.
const statsKind = "plan-stats"

// reportDoc names the leader's last evaluation in the store.
const reportDoc = "plan-report"

const (
	publishEvery = time.Second
	// A replica's breaker state counts while its document is this fresh;
	// documents older than docPrune are removed.
	breakerFresh = 5 * time.Second
	docPrune     = time.Hour
)

// side is one side's counters: requests, 5xx answers, fallbacks (new
// side only), and the duration histogram (cumulative bucket counts, one
// per proxy.DurationBuckets bound).
type side struct {
	Requests  uint64   `json:"requests"`
	Errors    uint64   `json:"errors"`
	Fallbacks uint64   `json:"fallbacks,omitempty"`
	Count     uint64   `json:"count"`
	Buckets   []uint64 `json:"buckets"`
}

func fromStats(s *reqstats.SideStats) side {
	if s == nil {
		return side{Buckets: make([]uint64, len(proxy.DurationBuckets))}
	}
	return side{Requests: s.Requests, Errors: s.Errors, Fallbacks: s.Fallbacks, Count: s.Count, Buckets: append([]uint64(nil), s.Buckets...)}
}

// add adds d to s.
func (s *side) add(d side) {
	s.Requests += d.Requests
	s.Errors += d.Errors
	s.Fallbacks += d.Fallbacks
	s.Count += d.Count
	if len(s.Buckets) < len(d.Buckets) {
		s.Buckets = append(s.Buckets, make([]uint64, len(d.Buckets)-len(s.Buckets))...)
	}
	for i, b := range d.Buckets {
		s.Buckets[i] += b
	}
}

// sub is s minus an earlier reading of the same counters; a counter that
// went down (a restart) counts from zero.
func (s side) sub(e side) side {
	d := func(a, b uint64) uint64 {
		if b > a {
			return a
		}
		return a - b
	}
	out := side{Requests: d(s.Requests, e.Requests), Errors: d(s.Errors, e.Errors), Fallbacks: d(s.Fallbacks, e.Fallbacks),
		Count: d(s.Count, e.Count), Buckets: make([]uint64, len(s.Buckets))}
	for i, b := range s.Buckets {
		var eb uint64
		if i < len(e.Buckets) {
			eb = e.Buckets[i]
		}
		out.Buckets[i] = d(b, eb)
	}
	return out
}

// reset reports whether a reading is lower than an earlier one: the
// process restarted and its counters began again.
func (s side) reset(e side) bool { return s.Requests < e.Requests || s.Count < e.Count }

func (s side) stats() *reqstats.SideStats {
	return &reqstats.SideStats{Requests: s.Requests, Errors: s.Errors, Fallbacks: s.Fallbacks, Count: s.Count, Buckets: s.Buckets}
}

// failures are the new side's 5xx answers and the calls legacy served in
// its place; attempts are its answers and those fallbacks.
func (s side) failures() uint64 { return s.Errors + s.Fallbacks }
func (s side) attempts() uint64 { return s.Requests + s.Fallbacks }

// errorRate is failures over attempts (NaN without attempts).
func (s side) errorRate() float64 {
	if s.attempts() == 0 {
		return math.NaN()
	}
	return float64(s.failures()) / float64(s.attempts())
}

// p99 in seconds (NaN without observations).
func (s side) p99() float64 { return s.stats().Quantile(0.99) }

// routeCounters are one route's two sides.
type routeCounters struct {
	Legacy side `json:"legacy"`
	New    side `json:"new"`
	// BreakerOpen: the new side's breaker is open (or forced open) on
	// this replica.
	BreakerOpen bool `json:"breaker_open,omitempty"`
}

// statsDoc is what a replica publishes.
type statsDoc struct {
	Replica string                    `json:"replica"`
	Started time.Time                 `json:"started"`
	At      time.Time                 `json:"at"`
	Routes  map[string]*routeCounters `json:"routes"`
}

// snapshot reads this replica's counters of the routes with a plan.
func (c *Controller) snapshot(t *routing.Table) statsDoc {
	doc := statsDoc{Replica: c.replica, Started: c.started, At: time.Now().UTC(), Routes: map[string]*routeCounters{}}
	all := c.o.Stats()
	for _, r := range t.Routes {
		if r.Migration == nil {
			continue
		}
		rc := &routeCounters{Legacy: fromStats(all[r.ID]["legacy"]), New: fromStats(all[r.ID]["new"])}
		if r.New != nil && r.New.Breaker != nil {
			st := r.New.Breaker.State()
			rc.BreakerOpen = st == "open" || st == "forced-open"
		}
		doc.Routes[r.ID] = rc
	}
	return doc
}

// fleetCounters sums the increases of every replica's counters into
// counters that only grow.
type fleetCounters struct {
	last   map[string]statsDoc       // each replica's previous document
	totals map[string]*routeCounters // the sums
	// open lists, per route, the replicas whose new-side breaker is open.
	open map[string][]string
}

func newFleetCounters() *fleetCounters {
	return &fleetCounters{last: map[string]statsDoc{}, totals: map[string]*routeCounters{}, open: map[string][]string{}}
}

// absorb adds the replicas' documents, read at now.
func (f *fleetCounters) absorb(docs map[string]statsDoc, now time.Time) {
	f.open = map[string][]string{}
	for id, doc := range docs {
		prev, seen := f.last[id]
		if seen && !prev.Started.Equal(doc.Started) {
			seen = false // a new process under the same name
		}
		for route, rc := range doc.Routes {
			tot := f.totals[route]
			if tot == nil {
				tot = &routeCounters{Legacy: fromStats(nil), New: fromStats(nil)}
				f.totals[route] = tot
			}
			var before routeCounters
			if seen && prev.Routes[route] != nil {
				before = *prev.Routes[route]
			}
			if rc.Legacy.reset(before.Legacy) || rc.New.reset(before.New) {
				before = routeCounters{}
			}
			tot.Legacy.add(rc.Legacy.sub(before.Legacy))
			tot.New.add(rc.New.sub(before.New))
			if rc.BreakerOpen && now.Sub(doc.At) < breakerFresh {
				f.open[route] = append(f.open[route], id)
			}
		}
		f.last[id] = doc
	}
}

// reading is the fleet counters of one route at one moment.
func (f *fleetCounters) reading(route string) routeCounters {
	t := f.totals[route]
	if t == nil {
		return routeCounters{Legacy: fromStats(nil), New: fromStats(nil)}
	}
	c := routeCounters{Legacy: t.Legacy.sub(side{}), New: t.New.sub(side{})}
	return c
}

// readDocs returns every replica's document: this replica's read now, the
// others' from the store in a fleet. Documents older than docPrune are
// removed from the store.
func (c *Controller) readDocs(ctx context.Context, t *routing.Table) (map[string]statsDoc, error) {
	own := c.snapshot(t)
	docs := map[string]statsDoc{c.replica: own}
	fl := c.o.Overrides.Fleet()
	if fl == nil {
		return docs, nil
	}
	raw, err := fl.ReplicaDocs(ctx, statsKind)
	if err != nil {
		return docs, err
	}
	now := time.Now()
	for id, b := range raw {
		if id == c.replica {
			continue
		}
		var d statsDoc
		if json.Unmarshal(b, &d) != nil {
			continue
		}
		if now.Sub(d.At) > docPrune {
			_ = fl.DeleteReplicaDoc(ctx, statsKind, id)
			continue
		}
		docs[id] = d
	}
	return docs, nil
}

// publish stores this replica's counters for the leader (fleet only).
func (c *Controller) publish(ctx context.Context, t *routing.Table) {
	fl := c.o.Overrides.Fleet()
	if fl == nil {
		return
	}
	b, err := json.Marshal(c.snapshot(t))
	if err != nil {
		return
	}
	if err := fl.PutReplicaDoc(ctx, statsKind, b); err != nil {
		c.countError("publish")
		c.log.Debug("publishing plan counters failed", "err", err)
	}
}
