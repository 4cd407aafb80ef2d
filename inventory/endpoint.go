package inventory

import (
	"math/bits"
	"sort"
	"sync/atomic"
	"time"
)

// Latency histogram: a fixed log-linear histogram of microseconds, four
// buckets per power of two from 16µs, so any percentile read from it is
// within 12% of the truth. Bucket 0 holds everything under 16µs; the last
// bucket everything from about 71 minutes. Recording is one atomic add.
const (
	histMinPow = 4
	histPows   = 28
	nBuckets   = 1 + 4*histPows
)

// bucketOf returns the histogram bucket of a duration.
func bucketOf(d time.Duration) int {
	us := uint64(d / time.Microsecond)
	if d < 0 || us < 1<<histMinPow {
		return 0
	}
	p := bits.Len64(us) - 1
	sub := int(us>>(p-2)) & 3
	i := (p-histMinPow)*4 + sub + 1
	if i >= nBuckets {
		return nBuckets - 1
	}
	return i
}

// bucketBounds returns a bucket's range in microseconds.
func bucketBounds(i int) (lo, hi float64) {
	if i <= 0 {
		return 0, 1 << histMinPow
	}
	p := (i-1)/4 + histMinPow
	sub := (i - 1) % 4
	step := float64(uint64(1) << (p - 2))
	return float64(4+sub) * step, float64(5+sub) * step
}

// Status classes: index 0 is anything outside 100-599.
func statusClass(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status / 100
}

// Bounds of one endpoint's detail: query parameter names and claiming
// routes kept per endpoint (more are counted, not named).
const (
	maxParams = 16
	// maxMethod bounds the method an endpoint is learnt under: a longer
	// one (any token passes the edge) is learnt as its first maxMethod
	// bytes, so that the request's signature, built in scan's fixed
	// buffer, is always the endpoint's key (a method past that buffer
	// made a new endpoint each time, merged away with its counts).
	maxMethod = 32
	maxRoutes = 4
)

type paramSlot struct {
	name string
	n    atomic.Int64
}

type routeSlot struct {
	id string
	n  atomic.Int64
}

// Endpoint is one learned endpoint: a method and a template, and what
// traffic it got. Counters are atomics updated under the inventory's read
// lock; names (params, routes) are added under its write lock.
type Endpoint struct {
	leaf   *leaf
	method string
	sels   []selector // sorted by key
	sig    string     // method + selectors: its key in leaf.eps

	side    [2]atomic.Int64 // by routing.Side: legacy, new
	cur     [2]atomic.Int64 // this coverage interval
	prev    [2]int64        // the previous interval (written under the write lock)
	status  [6]atomic.Int64
	bytes   atomic.Int64
	first   atomic.Int64 // unix seconds
	last    atomic.Int64
	hist    [nBuckets]atomic.Uint64
	example string // redacted; set under the write lock

	params      [maxParams]paramSlot
	np          int
	routes      [maxRoutes]routeSlot
	nr          int
	otherRoutes atomic.Int64
}

// selector is a query key whose value is part of the endpoint.
type selector struct{ key, value string }

// record counts one request.
func (ep *Endpoint) record(side int, status int, d time.Duration, n int64, now int64) {
	ep.side[side].Add(1)
	ep.cur[side].Add(1)
	ep.status[statusClass(status)].Add(1)
	if n > 0 {
		ep.bytes.Add(n)
	}
	ep.hist[bucketOf(d)].Add(1)
	if ep.last.Load() < now {
		ep.last.Store(now)
	}
}

// total is the endpoint's request count.
func (ep *Endpoint) total() int64 { return ep.side[0].Load() + ep.side[1].Load() }

// findParam returns the slot of a query parameter, nil when unnamed.
func (ep *Endpoint) findParam(name []byte) *paramSlot {
	for i := 0; i < ep.np; i++ {
		if ep.params[i].name == string(name) {
			return &ep.params[i]
		}
	}
	return nil
}

// findRoute returns the slot of a claiming route, nil when unnamed.
func (ep *Endpoint) findRoute(id string) *routeSlot {
	for i := 0; i < ep.nr; i++ {
		if ep.routes[i].id == id {
			return &ep.routes[i]
		}
	}
	return nil
}

// addParam names a parameter (write lock); false when the slots are full.
func (ep *Endpoint) addParam(name string) *paramSlot {
	if s := ep.findParam([]byte(name)); s != nil {
		return s
	}
	if ep.np == maxParams {
		return nil
	}
	s := &ep.params[ep.np]
	s.name = name
	ep.np++
	return s
}

// addRoute names a claiming route (write lock); nil when the slots are full.
func (ep *Endpoint) addRoute(id string) *routeSlot {
	if s := ep.findRoute(id); s != nil {
		return s
	}
	if ep.nr == maxRoutes {
		return nil
	}
	s := &ep.routes[ep.nr]
	s.id = id
	ep.nr++
	return s
}

// mergeFrom adds src's traffic to ep (write lock): what two endpoints
// that turned out to be one endpoint saw together.
func (ep *Endpoint) mergeFrom(src *Endpoint) {
	for i := range ep.side {
		ep.side[i].Add(src.side[i].Load())
		ep.cur[i].Add(src.cur[i].Load())
		ep.prev[i] += src.prev[i]
	}
	for i := range ep.status {
		ep.status[i].Add(src.status[i].Load())
	}
	ep.bytes.Add(src.bytes.Load())
	for i := range ep.hist {
		if v := src.hist[i].Load(); v != 0 {
			ep.hist[i].Add(v)
		}
	}
	ep.mergeSeen(src.first.Load(), src.last.Load(), src.example)
	for i := 0; i < src.np; i++ {
		ep.addParamCount(src.params[i].name, src.params[i].n.Load())
	}
	for i := 0; i < src.nr; i++ {
		ep.addRouteCount(src.routes[i].id, src.routes[i].n.Load())
	}
	ep.otherRoutes.Add(src.otherRoutes.Load())
}

// mergeSeen merges first/last seen and the example: the example of the
// earliest first sighting, ties broken by the smaller URL, so merging is
// order-independent.
func (ep *Endpoint) mergeSeen(first, last int64, example string) {
	f := ep.first.Load()
	if first != 0 && (f == 0 || first < f || first == f && (ep.example == "" || example != "" && example < ep.example)) {
		ep.first.Store(first)
		ep.example = example
	}
	if last > ep.last.Load() {
		ep.last.Store(last)
	}
}

func (ep *Endpoint) addParamCount(name string, n int64) {
	if s := ep.addParam(name); s != nil {
		s.n.Add(n)
	}
}

func (ep *Endpoint) addRouteCount(id string, n int64) {
	if s := ep.addRoute(id); s != nil {
		s.n.Add(n)
	} else {
		ep.otherRoutes.Add(n)
	}
}

// sortParams orders parameter names (after a merge) so that which names
// fill the slots does not depend on merge order.
func sortedParams(ep *Endpoint) []ParamState {
	out := make([]ParamState, 0, ep.np)
	for i := 0; i < ep.np; i++ {
		out = append(out, ParamState{Name: ep.params[i].name, Requests: ep.params[i].n.Load()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
