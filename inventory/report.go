package inventory

import (
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/strangler/strangler/routing"
)

// Report is the inventory for people: GET /admin/inventory and
// `strangler inventory -json` print it.
type Report struct {
	Generated time.Time `json:"generated"`
	Since     time.Time `json:"since,omitzero"`
	// Requests are every request observed, by the side that answered.
	Requests Sides    `json:"requests"`
	Coverage Coverage `json:"coverage"`
	// Endpoints are every endpoint learnt: those legacy serves first, by
	// legacy traffic, then those the new side serves.
	Endpoints []EndpointReport `json:"endpoints"`
	// Aliases counts the endpoints flagged as suspected aliases.
	Aliases  int            `json:"suspected_aliases"`
	Overflow OverflowReport `json:"overflow"`
}

// Coverage is the migration's progress bar: the share of requests, and
// of distinct endpoints, the new side serves.
type Coverage struct {
	// RequestsNewShare is the new side's share of every request observed.
	RequestsNewShare float64 `json:"requests_new_share"`
	// Recent are the requests of the current and the previous interval,
	// and RecentNewShare the new side's share of them.
	Recent         Sides   `json:"recent"`
	RecentNewShare float64 `json:"recent_new_share"`
	// Endpoints learnt, and how many are served by new (most of their
	// recent requests).
	Endpoints         int     `json:"endpoints"`
	EndpointsNew      int     `json:"endpoints_new"`
	EndpointsNewShare float64 `json:"endpoints_new_share"`
	// History is the coverage per interval, oldest first.
	History []Point `json:"history"`
}

// OverflowReport is the bucket of requests the inventory had no room to
// learn.
type OverflowReport struct {
	Requests     Sides `json:"requests"`
	MaxEndpoints int   `json:"max_endpoints"`
}

// EndpointReport is one endpoint with its statistics.
type EndpointReport struct {
	// Endpoint is the method and template, with the selectors and the
	// query parameters every request had: "GET /course.php?id={id}".
	Endpoint  string     `json:"endpoint"`
	Method    string     `json:"method"`
	Path      string     `json:"path"`
	Selectors []Selector `json:"selectors,omitempty"`
	// Side serves most of its recent requests: legacy or new.
	Side     string `json:"side"`
	Requests int64  `json:"requests"`
	Legacy   int64  `json:"legacy_requests"`
	New      int64  `json:"new_requests"`
	// LegacyShare is its share of all requests legacy served.
	LegacyShare float64 `json:"legacy_share"`
	// Methods are every method seen on this path template.
	Methods   []string         `json:"methods"`
	Status    map[string]int64 `json:"status"`
	ErrorRate float64          `json:"error_rate"` // 5xx share
	P50ms     float64          `json:"p50_ms"`
	P99ms     float64          `json:"p99_ms"`
	Bytes     int64            `json:"bytes"`
	FirstSeen time.Time        `json:"first_seen,omitzero"`
	LastSeen  time.Time        `json:"last_seen,omitzero"`
	// Example is a URL of it, sensitive query values redacted.
	Example string        `json:"example,omitempty"`
	Params  []ParamReport `json:"params,omitempty"`
	// Routes are the routes that claimed its requests ("default": none
	// did); ClaimedBy the route that claims it in the running table, ""
	// when no route does.
	Routes    []RouteCount `json:"routes,omitempty"`
	ClaimedBy string       `json:"claimed_by,omitempty"`
	// Aliases flag it as another way in to a migrated route.
	Aliases []Alias `json:"aliases,omitempty"`
}

// ParamReport is a query parameter; Required when every request had it.
type ParamReport struct {
	Name     string `json:"name"`
	Requests int64  `json:"requests"`
	Required bool   `json:"required,omitempty"`
}

// Alias says why a legacy endpoint looks like a migrated route's: the
// same path behind a front controller (/index.php/api/courses/7), or the
// route's path carried in a query parameter (/?rest_route=/wp/v2/posts).
type Alias struct {
	Kind  string `json:"kind"` // front_controller or query_parameter
	Route string `json:"route"`
	// RouteSide is the route's configured side.
	RouteSide string `json:"route_side"`
	// Via is the path the route would see.
	Via   string `json:"via"`
	Param string `json:"param,omitempty"`
}

// BuildReport turns a snapshot into a report. t is the running table (nil
// offline): it says which route claims each endpoint now and which
// endpoints are aliases of migrated routes.
func BuildReport(s *Snapshot, t *routing.Table) *Report {
	r := &Report{
		Generated: s.Taken, Since: s.Since, Requests: s.Requests,
		Overflow: OverflowReport{Requests: s.Overflow.Requests, MaxEndpoints: s.MaxEndpoints},
	}
	legacy := s.Requests.Legacy
	methods := map[string][]string{}
	for _, e := range s.Endpoints {
		if !slices.Contains(methods[e.Path], e.Method) {
			methods[e.Path] = append(methods[e.Path], e.Method)
		}
	}
	var migrated []*routing.Route
	if t != nil {
		for _, rt := range t.Routes {
			if rt.New != nil && rt.Pattern != nil {
				migrated = append(migrated, rt)
			}
		}
	}
	for i := range s.Endpoints {
		e := &s.Endpoints[i]
		er := EndpointReport{
			Endpoint: e.Name(), Method: e.Method, Path: e.Path, Selectors: e.Selectors,
			Requests: e.Requests.Total(), Legacy: e.Requests.Legacy, New: e.Requests.New,
			Bytes: e.Bytes, FirstSeen: e.First, LastSeen: e.Last, Example: e.Example,
			Routes: e.Routes, Status: map[string]int64{},
		}
		er.Side = sideOf(e)
		if legacy > 0 {
			er.LegacyShare = float64(e.Requests.Legacy) / float64(legacy)
		}
		er.Methods = slices.Clone(methods[e.Path])
		slices.Sort(er.Methods)
		for c, n := range e.Status {
			if n == 0 {
				continue
			}
			name := "other"
			if c > 0 {
				name = string(rune('0'+c)) + "xx"
			}
			er.Status[name] = n
		}
		if er.Requests > 0 {
			er.ErrorRate = float64(e.Status[5]) / float64(er.Requests)
		}
		er.P50ms, er.P99ms = percentileMS(e.Latency, 0.50), percentileMS(e.Latency, 0.99)
		var required []string
		for _, p := range e.Params {
			pr := ParamReport{Name: p.Name, Requests: p.Requests, Required: p.Requests >= er.Requests}
			er.Params = append(er.Params, pr)
			if pr.Required {
				required = append(required, p.Name+"={"+p.Name+"}")
			}
		}
		if len(required) > 0 {
			// The parameters every request had are part of how people
			// recognise it: GET /course.php?id={id}.
			sep := "?"
			if len(e.Selectors) > 0 {
				sep = "&"
			}
			er.Endpoint += sep + strings.Join(required, "&")
		}
		if t != nil {
			if rt := claim(t, e); rt != nil {
				er.ClaimedBy = rt.ID
			}
			if er.Legacy > 0 {
				er.Aliases = aliases(t, migrated, e, er.ClaimedBy)
			}
		} else {
			best := int64(0)
			for _, rc := range e.Routes {
				if rc.Route != routing.DefaultRouteID && rc.Requests > best {
					er.ClaimedBy, best = rc.Route, rc.Requests
				}
			}
		}
		if len(er.Aliases) > 0 {
			r.Aliases++
		}
		r.Endpoints = append(r.Endpoints, er)
		r.Coverage.Endpoints++
		if er.Side == "new" {
			r.Coverage.EndpointsNew++
		}
	}
	sort.SliceStable(r.Endpoints, func(i, j int) bool {
		a, b := &r.Endpoints[i], &r.Endpoints[j]
		if (a.Side == "legacy") != (b.Side == "legacy") {
			return a.Side == "legacy"
		}
		ka, kb := a.Legacy, b.Legacy
		if a.Side == "new" {
			ka, kb = a.New, b.New
		}
		if ka != kb {
			return ka > kb
		}
		return a.Endpoint < b.Endpoint
	})
	c := &r.Coverage
	if n := s.Requests.Total(); n > 0 {
		c.RequestsNewShare = float64(s.Requests.New) / float64(n)
	}
	c.Recent = Sides{s.Current.Legacy + s.Previous.Legacy, s.Current.New + s.Previous.New}
	if n := c.Recent.Total(); n > 0 {
		c.RecentNewShare = float64(c.Recent.New) / float64(n)
	}
	if c.Endpoints > 0 {
		c.EndpointsNewShare = float64(c.EndpointsNew) / float64(c.Endpoints)
	}
	c.History = append([]Point{}, s.History...)
	if s.Current.Total() > 0 {
		// The interval in progress, so the history reaches now.
		pt := Point{Start: s.IntervalStart, Requests: s.Current.Total(), RequestsNew: s.Current.New}
		for _, e := range s.Endpoints {
			if e.Current.Total() > 0 {
				pt.Endpoints++
				if e.Current.New > e.Current.Legacy {
					pt.EndpointsNew++
				}
			}
		}
		c.History = append(c.History, pt)
	}
	return r
}

// sideOf is the side that served most of an endpoint's recent requests
// (all of them when it had none recently).
func sideOf(e *EndpointState) string {
	l, n := e.Current.Legacy+e.Previous.Legacy, e.Current.New+e.Previous.New
	if l+n == 0 {
		l, n = e.Requests.Legacy, e.Requests.New
	}
	if n > l {
		return "new"
	}
	return "legacy"
}

// percentileMS reads a percentile from a sparse histogram: the middle of
// the bucket it falls in, in milliseconds.
func percentileMS(h [][2]int64, q float64) float64 {
	var total int64
	for _, b := range h {
		total += b[1]
	}
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen int64
	for _, b := range h {
		seen += b[1]
		if seen >= rank {
			lo, hi := bucketBounds(int(b[0]))
			return (lo + hi) / 2 / 1000
		}
	}
	return 0
}

// noHeaders matches requests as if they had no headers.
type noHeaders struct{}

func (noHeaders) Peek(string) []byte { return nil }

// samplePath is a concrete path for a template: the example's when there
// is one, else the template with a value of each parameter's kind.
func samplePath(e *EndpointState) string {
	if e.Example != "" {
		p, _, _ := strings.Cut(e.Example, "?")
		return p
	}
	return concrete(e.Path)
}

var sampleValues = [nClass]string{"", "1", "00000000-0000-4000-8000-000000000000", "0123456789abcdef", "2024-01-31", "x-slug", "x/y"}

func concrete(template string) string {
	segs := strings.Split(template, "/")
	for i, s := range segs {
		if c, ok := classOfParam(s); ok {
			segs[i] = sampleValues[c]
		}
	}
	return strings.Join(segs, "/")
}

// match finds the route a request for path would get (host and headers
// unknown: routes that need them do not match).
func match(t *routing.Table, method, path string) *routing.Route {
	var p routing.Path
	if _, err := p.Parse([]byte(path), nil); err != nil {
		return nil
	}
	return t.Match([]byte(method), nil, &p, noHeaders{})
}

// claim is the route that claims an endpoint in t, nil for the default.
func claim(t *routing.Table, e *EndpointState) *routing.Route {
	r := match(t, e.Method, samplePath(e))
	if r == nil {
		r = match(t, e.Method, concrete(e.Path))
	}
	if r == nil || r.ID == routing.DefaultRouteID {
		return nil
	}
	return r
}

// frontControllers are script names legacy apps route every page through.
var scriptExts = []string{".php", ".asp", ".aspx", ".jsp", ".cgi", ".pl", ".do", ".action"}

func isScript(seg string) bool {
	for _, x := range scriptExts {
		if strings.HasSuffix(strings.ToLower(seg), x) && len(seg) > len(x) {
			return true
		}
	}
	return false
}

// aliases flags an endpoint that reaches legacy by another way than a
// migrated route (a route with a new side): the route's path behind a
// front-controller script, or carried in a query parameter.
func aliases(t *routing.Table, migrated []*routing.Route, e *EndpointState, claimedBy string) []Alias {
	var out []Alias
	add := func(a Alias) {
		if a.Route != claimedBy && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	// /index.php/api/courses/7: the path after the script.
	path := samplePath(e)
	segs := strings.Split(path, "/")
	for i := 1; i < len(segs)-1; i++ {
		if !isScript(segs[i]) {
			continue
		}
		via := "/" + strings.Join(segs[i+1:], "/")
		if r := match(t, e.Method, via); r != nil && r.New != nil {
			add(Alias{Kind: "front_controller", Route: r.ID, RouteSide: r.Side.String(), Via: via})
		}
		break
	}
	// /?rest_route=/wp/v2/posts: a path in the query, matched as it is, or
	// as the end of a migrated route's path (/wp-json/wp/v2/posts).
	var query url.Values
	if _, q, ok := strings.Cut(e.Example, "?"); ok {
		query, _ = url.ParseQuery(q)
	}
	for _, sel := range e.Selectors {
		if !strings.Contains(sel.Value, "/") {
			continue
		}
		via := query.Get(sel.Key)
		if via == "" {
			via = concrete(sel.Value)
		}
		if !strings.HasPrefix(via, "/") {
			via = "/" + via
		}
		if r := match(t, e.Method, via); r != nil && r.New != nil {
			add(Alias{Kind: "query_parameter", Route: r.ID, RouteSide: r.Side.String(), Via: via, Param: sel.Key})
			continue
		}
		for _, r := range migrated {
			if r.Methods != 0 {
				if m, ok := routing.MethodOf([]byte(e.Method)); !ok || r.Methods&m == 0 {
					continue
				}
			}
			if src, ok := strings.CutPrefix(r.Pattern.String(), "path "); ok && suffixMatch(src, sel.Value) {
				add(Alias{Kind: "query_parameter", Route: r.ID, RouteSide: r.Side.String(), Via: via, Param: sel.Key})
			}
		}
	}
	return out
}

// suffixMatch says whether the template tmpl (a carried path, "/wp/v2/posts")
// is the end of a route pattern ("/wp-json/wp/v2/posts"), at least two
// segments long; parameters match anything.
func suffixMatch(pattern, tmpl string) bool {
	ps := strings.Split(strings.Trim(pattern, "/"), "/")
	ts := strings.Split(strings.Trim(tmpl, "/"), "/")
	if len(ts) < 2 || len(ts) > len(ps) {
		return false
	}
	ps = ps[len(ps)-len(ts):]
	for i := range ts {
		pp := strings.HasPrefix(ps[i], "{")
		_, tp := classOfParam(ts[i])
		if pp || tp {
			continue
		}
		if ps[i] != ts[i] {
			return false
		}
	}
	return true
}

// Unmigrated are the endpoints legacy serves, by legacy traffic.
func (r *Report) Unmigrated() []EndpointReport {
	var out []EndpointReport
	for _, e := range r.Endpoints {
		if e.Side == "legacy" {
			out = append(out, e)
		}
	}
	return out
}
