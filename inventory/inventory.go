package inventory

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strangler/strangler/internal/ascii"
	"github.com/strangler/strangler/routing"
)

func b2s(b []byte) string { return ascii.B2S(b) }

// Options configure New.
type Options struct {
	// MaxEndpoints caps the endpoints learnt; requests for endpoints
	// beyond it are counted in the overflow bucket. Default 10000.
	MaxEndpoints int
	// Redact adds query keys (exact names, any case) to DefaultRedact:
	// their values are never stored and never name an endpoint.
	Redact []string
	// Interval is the resolution of the coverage history. Default 1h.
	Interval time.Duration
	// History is how many intervals are kept. Default 720 (30 days of
	// hours).
	History int
	// Now is the clock (tests replace it). Default time.Now.
	Now func() time.Time
	// Metrics, nil: none.
	Metrics *Metrics
	// Logger, nil: discard.
	Logger *slog.Logger
}

// Inventory learns the endpoints the gateway serves from its traffic.
// Observe is called once per request on the request path; it takes a read
// lock and updates atomic counters, and takes the write lock only when
// the request shows something new (a new endpoint, query key or value, or
// claiming route). In steady state it does not allocate.
type Inventory struct {
	mu        sync.RWMutex
	root      *node
	nodes     int // guarded by mu
	endpoints int // guarded by mu
	full      atomic.Bool
	overflow  *Endpoint

	maxEndpoints, maxNodes int
	roles                  map[string]uint8 // query key (lower case) -> role bits
	interval               int64            // seconds
	history                int
	clock                  func() time.Time
	now                    atomic.Int64 // unix seconds, advanced by Tick

	since    atomic.Int64    // first observation, unix seconds
	total    [2]atomic.Int64 // requests by side
	cur      [2]atomic.Int64 // this interval's requests by side
	prev     [2]int64        // the previous interval's (mu)
	curStart int64           // start of this interval (mu)
	points   []Point         // mu

	metrics       *Metrics
	log           *slog.Logger
	overflowNoted atomic.Bool
}

// New returns an empty inventory.
func New(o Options) *Inventory {
	if o.MaxEndpoints <= 0 {
		o.MaxEndpoints = 10000
	}
	if o.Interval <= 0 {
		o.Interval = time.Hour
	}
	if o.History <= 0 {
		o.History = 720
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	inv := &Inventory{
		root:         &node{},
		maxEndpoints: o.MaxEndpoints,
		// Nodes without endpoints (the inner segments) are bounded too, so
		// hostile paths cannot grow the tree without growing the count.
		maxNodes: 4*o.MaxEndpoints + 64,
		roles:    map[string]uint8{},
		interval: int64(o.Interval / time.Second),
		history:  o.History,
		clock:    o.Now,
		metrics:  o.Metrics,
		log:      o.Logger.With("component", "inventory"),
	}
	if inv.interval < 1 {
		inv.interval = 1
	}
	for k := range notSelectors {
		inv.roles[k] |= roleNotSelector
	}
	for _, k := range DefaultRedact {
		inv.roles[k] |= roleRedact | roleNotSelector
	}
	for _, k := range o.Redact {
		inv.roles[strings.ToLower(k)] |= roleRedact | roleNotSelector
	}
	inv.overflow = &Endpoint{method: "*", sig: "overflow"}
	now := inv.clock().Unix()
	inv.now.Store(now)
	inv.curStart = now - now%inv.interval
	if inv.metrics != nil {
		inv.metrics.bind(inv)
	}
	return inv
}

// Observe learns from one completed request: its method, canonical path
// and query, the route that claimed it (nil: the default route), the side
// that answered, the status, how long it took and the response bytes. It
// keeps none of its arguments' memory.
func (inv *Inventory) Observe(method string, p *routing.Path, r *routing.Route, side routing.Side, status int, d time.Duration, bytes int64) {
	if len(method) > maxMethod {
		method = method[:maxMethod]
	}
	var scv scan // on the stack: a sync.Pool would allocate under the race detector, which drops pooled items
	sc := &scv
	sc.parsePath(p.Dec)
	sc.nq, sc.nbuf = 0, 0
	if p.HasQuery {
		sc.parseQuery(inv, b2s(p.Query))
	}
	s := int(side) & 1
	now := inv.now.Load()
	inv.total[s].Add(1)
	inv.cur[s].Add(1)
	if inv.since.Load() == 0 {
		inv.since.CompareAndSwap(0, now)
	}
	route := routing.DefaultRouteID
	if r != nil {
		route = r.ID
	}

	inv.mu.RLock()
	ep := inv.find(sc, method)
	if ep == nil && inv.full.Load() {
		inv.overflow.record(s, status, d, bytes, now)
		inv.mu.RUnlock()
		inv.noteOverflow()
		return
	}
	if ep != nil && inv.known(ep, sc, route) {
		inv.count(ep, sc, route, s, status, d, bytes, now)
		inv.mu.RUnlock()
		return
	}
	inv.mu.RUnlock()

	// Something is new: learn it under the write lock.
	inv.mu.Lock()
	ep = inv.insert(sc, method)
	if ep == nil {
		inv.full.Store(true)
		inv.overflow.record(s, status, d, bytes, now)
		inv.mu.Unlock()
		inv.noteOverflow()
		return
	}
	if ep.first.Load() == 0 {
		ep.first.Store(now)
		ep.example = inv.example(p)
	}
	if ep.findRoute(route) == nil {
		ep.addRoute(strings.Clone(route))
	}
	for i := 0; i < sc.nq; i++ {
		if q := &sc.q[i]; q.param && ep.findParam([]byte(q.key)) == nil {
			ep.addParam(strings.Clone(q.key))
		}
	}
	inv.count(ep, sc, route, s, status, d, bytes, now)
	inv.full.Store(inv.endpoints >= inv.maxEndpoints || inv.nodes >= inv.maxNodes)
	inv.mu.Unlock()
}

// known says whether ep already names the request's route and query
// parameters (or has no room left to name them).
func (inv *Inventory) known(ep *Endpoint, sc *scan, route string) bool {
	if ep.findRoute(route) == nil && ep.nr < maxRoutes {
		return false
	}
	if ep.np == maxParams {
		return true
	}
	for i := 0; i < sc.nq; i++ {
		if q := &sc.q[i]; q.param && ep.findParam([]byte(q.key)) == nil {
			return false
		}
	}
	return true
}

// count records a request on its endpoint (read or write lock).
func (inv *Inventory) count(ep *Endpoint, sc *scan, route string, s, status int, d time.Duration, bytes int64, now int64) {
	ep.record(s, status, d, bytes, now)
	if rs := ep.findRoute(route); rs != nil {
		rs.n.Add(1)
	} else {
		ep.otherRoutes.Add(1)
	}
	for i := 0; i < sc.nq; i++ {
		if q := &sc.q[i]; q.param {
			if ps := ep.findParam([]byte(q.key)); ps != nil {
				ps.n.Add(1)
			}
		}
	}
}

func (inv *Inventory) noteOverflow() {
	if inv.metrics != nil {
		inv.metrics.Overflow.Inc()
	}
	if !inv.overflowNoted.Swap(true) {
		inv.log.Warn("inventory full: requests to new endpoints are counted in the overflow bucket",
			"max_endpoints", inv.maxEndpoints)
	}
}

// example is the request's URL for people to read: the canonical path (as
// the client encoded it) and the query with the values of redacted keys
// replaced, at most 512 bytes.
func (inv *Inventory) example(p *routing.Path) string {
	var b strings.Builder
	b.WriteString(p.Fwd)
	if p.HasQuery && len(p.Query) > 0 {
		b.WriteByte('?')
		q := string(p.Query)
		for i := 0; q != ""; i++ {
			pair := q
			if j := strings.IndexByte(q, '&'); j >= 0 {
				pair, q = q[:j], q[j+1:]
			} else {
				q = ""
			}
			if i > 0 {
				b.WriteByte('&')
			}
			if k, _, ok := strings.Cut(pair, "="); ok && inv.redacted(k) {
				b.WriteString(k)
				b.WriteString("=REDACTED")
				continue
			}
			b.WriteString(pair)
		}
	}
	s := b.String()
	if len(s) > 512 {
		s = s[:512]
	}
	return s
}

// Tick advances the inventory's clock and closes the coverage interval
// when it is over. Run calls it every second.
func (inv *Inventory) Tick() {
	now := inv.clock().Unix()
	inv.now.Store(now)
	inv.mu.RLock()
	due := now >= inv.curStart+inv.interval
	inv.mu.RUnlock()
	if due {
		inv.mu.Lock()
		inv.rollover(now)
		inv.mu.Unlock()
	}
}

// rollover closes the current interval into a history point (write lock).
func (inv *Inventory) rollover(now int64) {
	if now < inv.curStart+inv.interval {
		return
	}
	pt := Point{Start: time.Unix(inv.curStart, 0).UTC()}
	for i := 0; i < 2; i++ {
		c := inv.cur[i].Swap(0)
		inv.prev[i] = c
		pt.Requests += c
		if i == int(routing.SideNew) {
			pt.RequestsNew = c
		}
	}
	inv.walk(func(ep *Endpoint) {
		l, n := ep.cur[0].Swap(0), ep.cur[1].Swap(0)
		ep.prev[0], ep.prev[1] = l, n
		if l+n > 0 {
			pt.Endpoints++
			if n > l {
				pt.EndpointsNew++
			}
		}
	})
	if pt.Requests > 0 {
		inv.points = append(inv.points, pt)
		if len(inv.points) > inv.history {
			inv.points = append(inv.points[:0], inv.points[len(inv.points)-inv.history:]...)
		}
	}
	inv.curStart = now - now%inv.interval
}

// walk visits every endpoint in a deterministic order (read or write
// lock).
func (inv *Inventory) walk(f func(*Endpoint)) {
	var visit func(n *node)
	visit = func(n *node) {
		if l := n.leaf; l != nil {
			for _, sig := range sortedKeys(l.eps) {
				f(l.eps[sig])
			}
		}
		for _, k := range sortedKeys(n.lits) {
			visit(n.lits[k])
		}
		for c := clID; c < nClass; c++ {
			if n.params[c] != nil {
				visit(n.params[c])
			}
		}
	}
	visit(inv.root)
}

// Observed returns the number of requests observed (restored ones
// included).
func (inv *Inventory) Observed() int64 { return inv.total[0].Load() + inv.total[1].Load() }

// Len returns the number of endpoints learnt.
func (inv *Inventory) Len() int {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	return inv.endpoints
}

// Run ticks every second until stop is closed.
func (inv *Inventory) Run(stop <-chan struct{}, every time.Duration, onTick func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			inv.Tick()
			if onTick != nil {
				onTick()
			}
		}
	}
}
