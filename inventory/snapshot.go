package inventory

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// SnapshotVersion is the version of the Snapshot format.
const SnapshotVersion = 1

// Snapshot is the inventory as data: what is persisted across restarts,
// what replicas exchange, and what reports are built from. Restoring a
// snapshot adds it to an inventory, so restoring several merges them.
type Snapshot struct {
	Version int       `json:"version"`
	Taken   time.Time `json:"taken"`
	// Replica names the gateway that took it ("" for one gateway alone).
	Replica string `json:"replica,omitempty"`
	// Since is the first request observed.
	Since time.Time `json:"since,omitzero"`
	// Requests are every request observed, by the side that answered.
	Requests Sides `json:"requests"`
	// Current and Previous are the requests of the current coverage
	// interval (which started at IntervalStart) and of the one before.
	Current       Sides           `json:"current"`
	Previous      Sides           `json:"previous"`
	IntervalStart time.Time       `json:"interval_start"`
	Endpoints     []EndpointState `json:"endpoints"`
	// Overflow counts the requests to endpoints beyond max_endpoints.
	Overflow EndpointState `json:"overflow"`
	// History is the coverage per interval, oldest first.
	History      []Point `json:"history,omitempty"`
	MaxEndpoints int     `json:"max_endpoints"`
}

// Sides counts requests by the side that answered.
type Sides struct {
	Legacy int64 `json:"legacy"`
	New    int64 `json:"new"`
}

// Total is both sides.
func (s Sides) Total() int64 { return s.Legacy + s.New }

// Point is the coverage of one interval: requests, and distinct endpoints
// seen, with how many of each the new side served (an endpoint counts as
// on new when new served most of its requests that interval).
type Point struct {
	Start        time.Time `json:"start"`
	Requests     int64     `json:"requests"`
	RequestsNew  int64     `json:"requests_new"`
	Endpoints    int64     `json:"endpoints"`
	EndpointsNew int64     `json:"endpoints_new"`
}

// EndpointState is one endpoint as data.
type EndpointState struct {
	Method string `json:"method"`
	// Path is the path template: literal segments percent-encoded where
	// a route pattern needs it, parameters as {id}, {uuid}, {hex},
	// {date}, {slug} and {rest}.
	Path string `json:"path"`
	// Selectors are the query values that are part of the endpoint
	// (page=export), sorted by key.
	Selectors []Selector `json:"selectors,omitempty"`
	// Collapsed are the query keys of this path that had too many values
	// to select a page (they are parameters).
	Collapsed []string     `json:"collapsed,omitempty"`
	Requests  Sides        `json:"requests"`
	Current   Sides        `json:"current"`
	Previous  Sides        `json:"previous"`
	Status    [6]int64     `json:"status"` // other, 1xx, 2xx, 3xx, 4xx, 5xx
	Bytes     int64        `json:"bytes"`
	First     time.Time    `json:"first_seen,omitzero"`
	Last      time.Time    `json:"last_seen,omitzero"`
	Example   string       `json:"example,omitempty"`
	Latency   [][2]int64   `json:"latency,omitempty"` // [bucket, count], non-zero buckets
	Params    []ParamState `json:"params,omitempty"`
	Routes    []RouteCount `json:"routes,omitempty"`
	// OtherRoutes counts requests claimed by routes beyond the four named.
	OtherRoutes int64 `json:"other_routes,omitempty"`
}

// Selector is a query key and the value that is part of an endpoint.
type Selector struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ParamState is a query parameter of an endpoint and how many of its
// requests carried it.
type ParamState struct {
	Name     string `json:"name"`
	Requests int64  `json:"requests"`
}

// RouteCount is a route that claimed an endpoint's requests.
type RouteCount struct {
	Route    string `json:"route"`
	Requests int64  `json:"requests"`
}

// Name is the endpoint as people read it: "GET /course.php",
// "GET /index.php?page=export".
func (e *EndpointState) Name() string {
	return e.Method + " " + e.Target()
}

// Target is the path template with the selectors as a query.
func (e *EndpointState) Target() string {
	if len(e.Selectors) == 0 {
		return e.Path
	}
	var b strings.Builder
	b.WriteString(e.Path)
	for i, s := range e.Selectors {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(s.Key)
		b.WriteByte('=')
		b.WriteString(s.Value)
	}
	return b.String()
}

func unix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// Snapshot copies the inventory.
func (inv *Inventory) Snapshot() *Snapshot {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	s := &Snapshot{
		Version:       SnapshotVersion,
		Taken:         unix(inv.now.Load()),
		Since:         unix(inv.since.Load()),
		Requests:      Sides{inv.total[0].Load(), inv.total[1].Load()},
		Current:       Sides{inv.cur[0].Load(), inv.cur[1].Load()},
		Previous:      Sides{inv.prev[0], inv.prev[1]},
		IntervalStart: unix(inv.curStart),
		History:       append([]Point(nil), inv.points...),
		MaxEndpoints:  inv.maxEndpoints,
		Endpoints:     make([]EndpointState, 0, inv.endpoints),
	}
	inv.walk(func(ep *Endpoint) { s.Endpoints = append(s.Endpoints, ep.state()) })
	s.Overflow = inv.overflow.state()
	s.Overflow.Path = ""
	return s
}

// state copies an endpoint (read lock).
func (ep *Endpoint) state() EndpointState {
	e := EndpointState{
		Method:      ep.method,
		Requests:    Sides{ep.side[0].Load(), ep.side[1].Load()},
		Current:     Sides{ep.cur[0].Load(), ep.cur[1].Load()},
		Previous:    Sides{ep.prev[0], ep.prev[1]},
		Bytes:       ep.bytes.Load(),
		First:       unix(ep.first.Load()),
		Last:        unix(ep.last.Load()),
		Example:     ep.example,
		Params:      sortedParams(ep),
		OtherRoutes: ep.otherRoutes.Load(),
	}
	for i := range ep.status {
		e.Status[i] = ep.status[i].Load()
	}
	for i := range ep.hist {
		if v := ep.hist[i].Load(); v != 0 {
			e.Latency = append(e.Latency, [2]int64{int64(i), int64(v)})
		}
	}
	for i := 0; i < ep.nr; i++ {
		e.Routes = append(e.Routes, RouteCount{ep.routes[i].id, ep.routes[i].n.Load()})
	}
	for _, s := range ep.sels {
		e.Selectors = append(e.Selectors, Selector{s.key, s.value})
	}
	if l := ep.leaf; l != nil {
		e.Path = l.node.template()
		for _, k := range sortedKeys(l.keys) {
			if l.keys[k].collapsed {
				e.Collapsed = append(e.Collapsed, k)
			}
		}
	}
	return e
}

// template renders the path to n.
func (n *node) template() string {
	var segs []string
	for x := n; x.parent != nil; x = x.parent {
		if x.cls == clWord {
			segs = append(segs, escapeSegment(x.label))
		} else {
			segs = append(segs, "{"+paramNames[x.cls]+"}")
		}
	}
	if len(segs) == 0 {
		return "/"
	}
	var b strings.Builder
	for i := len(segs) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(segs[i])
	}
	return b.String()
}

// patternByte marks the bytes a route pattern's literal may have raw
// (routing's pathByte without "%", which is escaped like the rest).
var patternByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()*+,=:@" {
		t[c] = true
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	return t
}()

// escapeSegment percent-encodes what a route pattern would not take raw
// ("{", "}", "%", spaces...).
func escapeSegment(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if !patternByte[s[i]] {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if patternByte[c] {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// templateScan reads a path template back into a scan.
func templateScan(path string, sc *scan) error {
	if path == "" || path[0] != '/' {
		return fmt.Errorf("path template %q must start with /", path)
	}
	sc.n = 0
	if path == "/" {
		return nil
	}
	for _, tok := range strings.Split(path[1:], "/") {
		if sc.n == maxDepth {
			return fmt.Errorf("path template %q is deeper than %d segments", path, maxDepth)
		}
		if c, ok := classOfParam(tok); ok {
			sc.segs[sc.n], sc.cls[sc.n] = "", c
		} else {
			lit, err := url.PathUnescape(tok)
			if err != nil || strings.ContainsAny(tok, "{}") {
				return fmt.Errorf("path template %q: bad segment %q", path, tok)
			}
			sc.segs[sc.n], sc.cls[sc.n] = lit, clWord
		}
		sc.n++
	}
	return nil
}

// Restore adds a snapshot to the inventory: its endpoints are learnt as if
// their requests had been observed here (templates collapse where the
// union of values says so), and their counters are added. Restoring into
// an empty inventory is loading a saved state; restoring several
// snapshots is merging replicas.
func (inv *Inventory) Restore(s *Snapshot) error {
	if s == nil {
		return nil
	}
	if s.Version != SnapshotVersion {
		return fmt.Errorf("inventory snapshot version %d: this gateway reads version %d", s.Version, SnapshotVersion)
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if !s.Since.IsZero() {
		if cur := inv.since.Load(); cur == 0 || s.Since.Unix() < cur {
			inv.since.Store(s.Since.Unix())
		}
	}
	inv.total[0].Add(s.Requests.Legacy)
	inv.total[1].Add(s.Requests.New)
	sameInterval := s.IntervalStart.Unix() == inv.curStart
	for i, e := range s.Endpoints {
		var sc scan
		if err := templateScan(e.Path, &sc); err != nil {
			return fmt.Errorf("endpoints[%d]: %w", i, err)
		}
		for _, sel := range e.Selectors {
			if sc.nq == maxQueryKeys || sc.nbuf+len(sel.Value) > len(sc.buf) || !validKey(sel.Key) {
				break
			}
			q := &sc.q[sc.nq]
			*q = qpair{key: sel.Key, kind: vSelector, off: sc.nbuf}
			if strings.Contains(sel.Value, "/") {
				q.kind = vRoute
			}
			if inv.redacted(sel.Key) || q.kind == vSelector && !inv.canSelect(sel.Key) {
				q.kind = vParam
			}
			sc.nbuf += copy(sc.buf[sc.nbuf:], sel.Value)
			q.end = sc.nbuf
			sc.nq++
		}
		ep := inv.insert(&sc, e.Method)
		if ep == nil {
			inv.full.Store(true)
			inv.overflow.add(&e, false)
			continue
		}
		for _, k := range e.Collapsed {
			l := ep.leaf
			if l.keys == nil {
				l.keys = map[string]*qkey{}
			}
			qk := l.keys[k]
			if qk == nil {
				qk = &qkey{}
				l.keys[k] = qk
			}
			if !qk.collapsed {
				inv.collapseKey(l, k, qk)
			}
		}
		// A collapse may have merged ep into another: find it again.
		if cur := inv.insert(&sc, e.Method); cur != nil {
			ep = cur
		}
		for _, sel := range e.Selectors {
			if !hasSelector(ep.sels, sel.Key) {
				ep.addParamCount(sel.Key, e.Requests.Total())
			}
		}
		ep.add(&e, sameInterval)
	}
	inv.overflow.add(&s.Overflow, sameInterval)
	hist := s.History
	if sameInterval {
		inv.cur[0].Add(s.Current.Legacy)
		inv.cur[1].Add(s.Current.New)
		inv.prev[0] += s.Previous.Legacy
		inv.prev[1] += s.Previous.New
	} else if s.Current.Total() > 0 {
		// The snapshot's interval has ended since: it is history now.
		inv.prev[0] += s.Current.Legacy
		inv.prev[1] += s.Current.New
		pt := Point{Start: s.IntervalStart.UTC(), Requests: s.Current.Total(), RequestsNew: s.Current.New}
		for _, e := range s.Endpoints {
			if e.Current.Total() > 0 {
				pt.Endpoints++
				if e.Current.New > e.Current.Legacy {
					pt.EndpointsNew++
				}
			}
		}
		hist = append(append([]Point(nil), hist...), pt)
	}
	inv.points = mergePoints(inv.points, hist, inv.history)
	inv.full.Store(inv.endpoints >= inv.maxEndpoints || inv.nodes >= inv.maxNodes)
	return nil
}

func hasSelector(sels []selector, key string) bool {
	for _, s := range sels {
		if s.key == key {
			return true
		}
	}
	return false
}

// add adds an endpoint's saved counters (write lock). Counts of the
// current interval are kept when the snapshot was taken in this interval;
// otherwise they belong to a closed one.
func (ep *Endpoint) add(e *EndpointState, sameInterval bool) {
	ep.side[0].Add(e.Requests.Legacy)
	ep.side[1].Add(e.Requests.New)
	if sameInterval {
		ep.cur[0].Add(e.Current.Legacy)
		ep.cur[1].Add(e.Current.New)
		ep.prev[0] += e.Previous.Legacy
		ep.prev[1] += e.Previous.New
	} else {
		ep.prev[0] += e.Current.Legacy
		ep.prev[1] += e.Current.New
	}
	for i, v := range e.Status {
		ep.status[i].Add(v)
	}
	ep.bytes.Add(e.Bytes)
	for _, b := range e.Latency {
		if b[0] >= 0 && b[0] < nBuckets && b[1] > 0 {
			ep.hist[b[0]].Add(uint64(b[1]))
		}
	}
	var first, last int64
	if !e.First.IsZero() {
		first = e.First.Unix()
	}
	if !e.Last.IsZero() {
		last = e.Last.Unix()
	}
	ep.mergeSeen(first, last, e.Example)
	for _, p := range e.Params {
		ep.addParamCount(p.Name, p.Requests)
	}
	for _, r := range e.Routes {
		ep.addRouteCount(r.Route, r.Requests)
	}
	ep.otherRoutes.Add(e.OtherRoutes)
}

// mergePoints merges two coverage histories: points of the same interval
// add their requests; their distinct endpoint counts are the larger of
// the two (replicas see overlapping endpoints, so this is a lower bound).
func mergePoints(a, b []Point, keep int) []Point {
	byStart := map[int64]int{}
	out := append([]Point(nil), a...)
	for i, p := range out {
		byStart[p.Start.Unix()] = i
	}
	for _, p := range b {
		if i, ok := byStart[p.Start.Unix()]; ok {
			q := &out[i]
			q.Requests += p.Requests
			q.RequestsNew += p.RequestsNew
			q.Endpoints = max(q.Endpoints, p.Endpoints)
			q.EndpointsNew = max(q.EndpointsNew, p.EndpointsNew)
			continue
		}
		byStart[p.Start.Unix()] = len(out)
		out = append(out, p)
	}
	sortPoints(out)
	if len(out) > keep {
		out = out[len(out)-keep:]
	}
	return out
}

// Merge combines snapshots (the replicas of a fleet) into one, as
// restoring each into an empty inventory would.
func Merge(o Options, snaps ...*Snapshot) (*Snapshot, error) {
	inv := New(o)
	for _, s := range snaps {
		if err := inv.Restore(s); err != nil {
			return nil, err
		}
	}
	return inv.Snapshot(), nil
}

func sortPoints(p []Point) {
	sort.Slice(p, func(i, j int) bool { return p[i].Start.Before(p[j].Start) })
}
