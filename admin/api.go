package admin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/shadow"
	"github.com/strangler/strangler/store"
	"github.com/strangler/strangler/upstream"
)

// Gateway is what the admin API reads and drives: the serving table, the
// reload, and the shadow results. Package gateway's Router implements it.
type Gateway interface {
	Table() *routing.Table
	Generation() int64
	Reload() (*routing.Table, error)
	// ShadowStore is nil before the shadow engine starts.
	ShadowStore() shadow.Store
}

// API is the admin API, served on the operator listener only. Reads of
// state are open unless configured otherwise; reads that return request
// or response data (shadow results) need a token unless configured
// otherwise; mutations need a token, and without any token configured
// the API is read-only. Every mutation is an audit event in the log and a
// count in metrics.
type API struct {
	gw        Gateway
	overrides *Overrides
	metrics   *Metrics
	tokens    Tokens
	readAuth  bool
	dataAuth  bool
	log       *slog.Logger
}

// New returns the admin API over gw and the live overrides. tokens map a
// bearer token to the name audit events show and its role (LoadTokens):
// any token reads, only admin tokens change state; readAuth makes every
// read require a token. Reads of request and response data require one
// by default: see OpenData.
func New(gw Gateway, ov *Overrides, tokens Tokens, readAuth bool, m *Metrics, log *slog.Logger) *API {
	return &API{gw: gw, overrides: ov, metrics: m, tokens: tokens, readAuth: readAuth, dataAuth: true, log: log.With("component", "admin")}
}

// Authenticate returns the token's name and role, comparing in constant
// time (the operator console's login).
func (a *API) Authenticate(token string) (Token, bool) {
	return a.lookup([]byte(token))
}

// HandleRead registers a GET endpoint that reads state: open unless every
// read needs a token (read_requires_token), like GET /admin/routes.
func (a *API) HandleRead(mux *http.ServeMux, pattern string, f func(r *http.Request) (any, error)) {
	mux.HandleFunc(pattern, a.read(f))
}

// HandleMutate registers an endpoint that changes state, with the same
// rules as the API's own: an admin token, the body capped at 64 KiB, the
// result counted in strangler_admin_mutations_total{action}. f gets the
// token's name; an error from Error, BadRequest, NotFound or StoreError
// sets the answer's status.
func (a *API) HandleMutate(mux *http.ServeMux, pattern, action string, f func(r *http.Request, who string) (any, error)) {
	mux.HandleFunc(pattern, a.mutate(action, f))
}

// Error is an error the API answers with status, a short code and msg.
func Error(status int, code, msg string) error {
	return &apiError{status: status, code: code, msg: msg}
}

// BadRequest is a 400 answer.
func BadRequest(format string, args ...any) error { return badRequest(format, args...) }

// NotFound is a 404 answer.
func NotFound(format string, args ...any) error { return notFound(format, args...) }

// DecodeBody reads a JSON body strictly (unknown fields refused).
func DecodeBody(r *http.Request, v any) error { return decodeBody(r, v) }

// OpenData lets reads of request and response data (the shadow report
// and mismatches) through without a token (server.admin.
// data_requires_token: false); they still need one when every read does.
func (a *API) OpenData(open bool) *API {
	a.dataAuth = !open
	return a
}

// Register adds the API's endpoints to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/routes", a.read(a.routes))
	mux.HandleFunc("GET /admin/overrides", a.read(a.listOverrides))
	mux.HandleFunc("GET /admin/upstreams", a.read(a.upstreams))
	mux.HandleFunc("GET /admin/shadow", a.readData(a.shadow))
	mux.HandleFunc("GET /admin/shadow/{route}/mismatches", a.readData(a.mismatches))
	mux.HandleFunc("POST /admin/routes/{id}/side", a.mutate("side", a.setSide))
	mux.HandleFunc("POST /admin/routes/{id}/canary", a.mutate("canary", a.setCanary))
	mux.HandleFunc("DELETE /admin/routes/{id}/override", a.mutate("unflip", a.unflip))
	mux.HandleFunc("POST /admin/upstreams/{name}/breaker", a.mutate("breaker", a.forceBreaker))
	mux.HandleFunc("POST /admin/reload", a.mutate("reload", a.reload))
	mux.HandleFunc("GET /admin/audit", a.readPrivate(a.audit))
	mux.HandleFunc("GET /admin/fleet", a.read(a.fleet))
}

// HandleData registers a GET endpoint of another package that returns
// request data (the inventory's): it needs a token like the shadow
// results (server.admin.data_requires_token, default true).
func (a *API) HandleData(mux *http.ServeMux, pattern string, f func(r *http.Request) (any, error)) {
	mux.HandleFunc(pattern, a.readData(f))
}

// apiError is an error with its HTTP status.
type apiError struct {
	status int
	code   string
	msg    string
	detail []string
	hint   string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{status: 400, code: "invalid", msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &apiError{status: 404, code: "not_found", msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeAPIError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{status: 500, code: "error", msg: err.Error()}
	}
	body := map[string]any{"error": ae.code, "message": ae.msg}
	if len(ae.detail) > 0 {
		body["problems"] = ae.detail
	}
	if ae.hint != "" {
		body["hint"] = ae.hint
	}
	writeJSON(w, ae.status, body)
}

// caller returns the name of the request's token, of any role,
// comparing in constant time.
func (a *API) caller(r *http.Request) (string, bool) {
	t, ok := a.callerToken(r)
	return t.Name, ok
}

// callerToken returns the request's token's name and role.
func (a *API) callerToken(r *http.Request) (Token, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 8 || !strings.EqualFold(h[:7], "bearer ") {
		return Token{}, false
	}
	return a.lookup([]byte(strings.TrimSpace(h[7:])))
}

// lookup compares got with every token in constant time.
func (a *API) lookup(got []byte) (Token, bool) {
	var tok Token
	found := 0
	for t, v := range a.tokens {
		if subtle.ConstantTimeCompare(got, []byte(t)) == 1 {
			tok, found = v, 1
		}
	}
	return tok, found == 1 && len(got) > 0
}

// readPrivate serves a read that always needs a token of any role,
// whatever read_requires_token says (the audit trail: who did what, why).
func (a *API) readPrivate(f func(r *http.Request) (any, error)) http.HandlerFunc {
	return a.serveRead(f, true, "this endpoint needs a token: set STRANGLER_ADMIN_TOKEN or server.admin.tokens_file",
		"a valid bearer token is required", false)
}

// readData serves a read that returns request or response data: it needs
// a valid token unless data reads are open.
func (a *API) readData(f func(r *http.Request) (any, error)) http.HandlerFunc {
	if !a.dataAuth {
		return a.read(f)
	}
	return a.serveRead(f, true, "this endpoint returns request and response data and needs a token: set STRANGLER_ADMIN_TOKEN or server.admin.tokens_file (or server.admin.data_requires_token: false)",
		"a valid bearer token is required: this endpoint returns request and response data", true)
}

// read serves a read that needs a token when read_requires_token is set.
func (a *API) read(f func(r *http.Request) (any, error)) http.HandlerFunc {
	return a.serveRead(f, a.readAuth, "", "a bearer token is required", false)
}

// serveRead answers f's value as JSON. When needToken, a request without
// a valid token is refused: 403 (noTokens) when no token is configured at
// all (a configuration to fix, and only said when noTokens is not ""),
// else 401 (unauthorized), logged when logRefusal.
func (a *API) serveRead(f func(r *http.Request) (any, error), needToken bool, noTokens, unauthorized string, logRefusal bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if needToken {
			if noTokens != "" && len(a.tokens) == 0 {
				writeAPIError(w, &apiError{status: 403, code: "no_token", msg: noTokens})
				return
			}
			if _, ok := a.caller(r); !ok {
				if logRefusal {
					a.log.Warn("admin data read refused", "path", r.URL.Path, "remote", r.RemoteAddr)
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="strangler-admin"`)
				writeAPIError(w, &apiError{status: 401, code: "unauthorized", msg: unauthorized})
				return
			}
		}
		v, err := f(r)
		if err != nil {
			writeAPIError(w, err)
			return
		}
		writeJSON(w, 200, v)
	}
}

// StoreUnavailableHint is what a refused admin write says to do instead:
// the routes file reaches every replica without the store.
const StoreUnavailableHint = "every replica keeps serving the last state it applied. To flip a route without the store, " +
	"edit routes.yaml: set the route's side (legacy or new) and pinned: true (a pinned route ignores overrides), " +
	"then reload every replica (update the ConfigMap, send SIGHUP, or POST /admin/reload to each); " +
	"unpin it once the store is back"

// StoreError is the admin API's answer to a store failure (503 with the
// documented hint when the store is unreachable, 409 on a conflict), for
// handlers other packages add (HandleMutate).
func (a *API) StoreError(err error) error { return a.storeError(err) }

// storeError maps a store failure to the API's answer.
func (a *API) storeError(err error) error {
	var ue *store.UnavailableError
	switch {
	case errors.As(err, &ue):
		return &apiError{status: 503, code: "store_unavailable",
			msg:  fmt.Sprintf("the shared store (%s) is unreachable, so overrides cannot change: %v", a.overrides.store.Where(), ue.Err),
			hint: StoreUnavailableHint}
	case errors.Is(err, store.ErrConflict):
		return &apiError{status: 409, code: "conflict", msg: err.Error()}
	}
	return err
}

func (a *API) mutate(action string, f func(r *http.Request, who string) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		count := func(result string) { a.metrics.Mutations.WithLabelValues(action, result).Inc() }
		if len(a.tokens) == 0 {
			count("denied")
			writeAPIError(w, &apiError{status: 403, code: "read_only", msg: "the admin API is read-only: set STRANGLER_ADMIN_TOKEN or server.admin.tokens_file"})
			return
		}
		tok, ok := a.callerToken(r)
		if !ok {
			count("denied")
			a.log.Warn("admin mutation refused", "action", action, "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="strangler-admin"`)
			writeAPIError(w, &apiError{status: 401, code: "unauthorized", msg: "a valid bearer token is required"})
			return
		}
		if tok.Role != RoleAdmin {
			count("denied")
			a.log.Warn("admin mutation refused", "action", action, "path", r.URL.Path, "by", tok.Name, "role", string(tok.Role))
			writeAPIError(w, &apiError{status: 403, code: "read_only_token", msg: fmt.Sprintf("token %q is read-only: changes need an admin token", tok.Name)})
			return
		}
		who := tok.Name
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		v, err := f(r, who)
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.status < 500 {
				count("invalid")
			} else {
				count("error")
			}
			writeAPIError(w, err)
			return
		}
		count("ok")
		writeJSON(w, 200, v)
	}
}

// RouteState is a route as /admin/routes shows it: configured and
// effective, with the override that makes them differ (drift).
type RouteState struct {
	ID            string            `json:"id"`
	Line          int               `json:"line,omitempty"`
	Match         string            `json:"match"`
	Side          string            `json:"side"`
	CanaryPercent *float64          `json:"canary_percent,omitempty"`
	Effective     string            `json:"effective"`
	Override      *routing.Override `json:"override,omitempty"`
	Fallback      bool              `json:"fallback,omitempty"`
	NewUpstream   string            `json:"new_upstream,omitempty"`
	Breaker       string            `json:"breaker,omitempty"`
	Shadow        *ShadowState      `json:"shadow,omitempty"`
	// Settings are the route's routes.yaml settings, flattened
	// ("shadow.percent": "5"; plugin configurations as digests), for
	// strangler diff.
	Settings map[string]string `json:"settings,omitempty"`
}

// ShadowState is a shadowed route's summary in /admin/routes: counts and
// the verdict, no request or response data.
type ShadowState struct {
	Percent   float64 `json:"percent"`
	Compared  int64   `json:"compared"`
	MatchRate float64 `json:"match_rate"`
	// Verdict is ready, not_ready or not_enough_evidence; Summary says why.
	Verdict string `json:"verdict"`
	Summary string `json:"summary"`
}

func (a *API) routeState(r *routing.Route) RouteState {
	rs := RouteState{ID: r.ID, Line: r.Line, Side: r.Side.String(), Fallback: r.Fallback}
	if r.Pattern != nil {
		rs.Match = r.Pattern.String()
	}
	if r.Canary != nil && r.Side == routing.SideLegacy {
		p := r.Canary.Percent()
		rs.CanaryPercent = &p
	}
	if r.New != nil && r.New.Upstream != nil {
		rs.NewUpstream = r.New.Upstream.Name
		if r.New.Breaker != nil {
			rs.Breaker = r.New.Breaker.State()
		}
	}
	ov := a.overrides.Get(r.ID)
	if ov != nil && r.New != nil {
		cp := *ov
		rs.Override = &cp
	}
	rs.Effective = r.Plan(ov).String()
	if sh := r.Shadow; sh != nil {
		rs.Shadow = &ShadowState{Percent: sh.Percent()}
		var t *shadow.Tally
		if store := a.gw.ShadowStore(); store != nil {
			t = store.Tally(r.ID)
		}
		v := shadow.Judge(t, sh.Experiment.Ready)
		rs.Shadow.Compared, rs.Shadow.MatchRate, rs.Shadow.Verdict, rs.Shadow.Summary = v.Compared, v.MatchRate, v.State, v.Summary
	}
	rs.Settings = r.Settings()
	return rs
}

func (a *API) routes(*http.Request) (any, error) {
	t := a.gw.Table()
	out := []RouteState{}
	for _, r := range t.Routes {
		out = append(out, a.routeState(r))
	}
	// path is the file as this process opens it (absolute), so a client
	// on the same machine can find it whatever its working directory
	// (strangler apply installs a new version there).
	path, err := filepath.Abs(t.File)
	if err != nil {
		path = ""
	}
	return map[string]any{"generation": a.gw.Generation(), "file": t.File, "path": path, "routes": out}, nil
}

func (a *API) listOverrides(*http.Request) (any, error) {
	t := a.gw.Table()
	type row struct {
		routing.Override
		Orphan bool `json:"orphan,omitempty"`
	}
	out := []row{}
	for _, ov := range a.overrides.List() {
		out = append(out, row{ov, Inapplicable(t, &ov)})
	}
	return map[string]any{"overrides": out}, nil
}

type overrideRequest struct {
	Side    string   `json:"side"`
	Percent *float64 `json:"percent"`
	Reason  string   `json:"reason"`
	TTL     string   `json:"ttl"`
}

func decodeBody(r *http.Request, v any) error {
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{status: 413, code: "too_large", msg: "request body too large"}
		}
		return badRequest("bad JSON body: %v", err)
	}
	return nil
}

// applyOverride validates, persists and audits an override.
func (a *API) applyOverride(r *http.Request, who, action string, build func(req overrideRequest, ov *routing.Override) error) (any, error) {
	id := r.PathValue("id")
	route := a.gw.Table().Route(id)
	if route == nil || route.ID == routing.DefaultRouteID {
		return nil, notFound("no route %q", id)
	}
	if route.New == nil {
		return nil, badRequest("route %q has no new side to switch to", id)
	}
	if route.Pinned {
		return nil, &apiError{status: 409, code: "pinned", msg: fmt.Sprintf("route %q is pinned in routes.yaml: overrides do not apply to it; remove pinned: true there and reload first", id)}
	}
	var req overrideRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return nil, badRequest("say why: a reason is required (it goes to the audit log)")
	}
	ov := routing.Override{Route: id, Reason: req.Reason, By: who, At: time.Now().UTC()}
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return nil, badRequest("bad ttl %q: a duration like 30m or 1h", req.TTL)
		}
		ov.Expires = ov.At.Add(d)
	}
	if err := build(req, &ov); err != nil {
		return nil, err
	}
	if err := ov.Compile(); err != nil {
		return nil, badRequest("%v", err)
	}
	_, err := a.overrides.Set(r.Context(), ov, action)
	var np *NotPersistedError
	if err != nil && !errors.As(err, &np) {
		return nil, a.storeError(err)
	}
	return changed(a.routeState(route), np), nil
}

// ChangeResult is a route after an on-call change: the change is live;
// Persisted false means the state store could not keep it (it applies in
// memory and is retried; it would not survive a restart), and Warning
// says so in words.
type ChangeResult struct {
	RouteState
	Persisted bool   `json:"persisted"`
	Warning   string `json:"warning,omitempty"`
}

func changed(rs RouteState, np *NotPersistedError) ChangeResult {
	if np == nil {
		return ChangeResult{RouteState: rs, Persisted: true}
	}
	return ChangeResult{RouteState: rs, Warning: np.Error()}
}

func (a *API) setSide(r *http.Request, who string) (any, error) {
	return a.applyOverride(r, who, "side", func(req overrideRequest, ov *routing.Override) error {
		if req.Side != "legacy" && req.Side != "new" {
			return badRequest(`side must be "legacy" or "new"`)
		}
		if req.Percent != nil {
			return badRequest("set side or percent, not both")
		}
		ov.Side = req.Side
		return nil
	})
}

func (a *API) setCanary(r *http.Request, who string) (any, error) {
	return a.applyOverride(r, who, "canary", func(req overrideRequest, ov *routing.Override) error {
		if req.Percent == nil || req.Side != "" {
			return badRequest(`send {"percent": N, "reason": "..."}`)
		}
		if _, err := routing.PercentToBasisPoints(*req.Percent); err != nil {
			return badRequest("bad percentage %v: %v", *req.Percent, err)
		}
		ov.Percent = req.Percent
		return nil
	})
}

func (a *API) unflip(r *http.Request, who string) (any, error) {
	id := r.PathValue("id")
	// The reason is optional here (back to routes.yaml needs no excuse)
	// and goes to the audit trail when given.
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	prev, err := a.overrides.Delete(r.Context(), id, who, req.Reason)
	var np *NotPersistedError
	if err != nil && !errors.As(err, &np) {
		return nil, a.storeError(err)
	}
	if prev == nil {
		return nil, notFound("route %q has no override", id)
	}
	if route := a.gw.Table().Route(id); route != nil {
		return changed(a.routeState(route), np), nil
	}
	if np != nil {
		return map[string]any{"route": id, "override": "removed", "persisted": false, "warning": np.Error()}, nil
	}
	return map[string]any{"route": id, "override": "removed", "persisted": true}, nil
}

// UpstreamState is an upstream as /admin/upstreams shows it.
type UpstreamState struct {
	Name      string          `json:"name"`
	Legacy    bool            `json:"legacy,omitempty"`
	Instances []InstanceState `json:"instances"`
	InFlight  int64           `json:"in_flight"`
	Breaker   string          `json:"breaker,omitempty"`
}

// InstanceState is one instance of an upstream and its health
// (upstream/health.go).
type InstanceState struct {
	URL      string `json:"url"`
	InFlight int    `json:"in_flight"`
	upstream.InstanceHealth
}

func (a *API) upstreams(*http.Request) (any, error) {
	t := a.gw.Table()
	out := []UpstreamState{}
	for _, name := range sortedKeys(t.Upstreams) {
		up := t.Upstreams[name]
		us := UpstreamState{Name: name, Legacy: up == t.Legacy, InFlight: up.Bulkhead.InFlight()}
		for _, in := range up.Instances {
			us.Instances = append(us.Instances, InstanceState{URL: in.URL, InFlight: in.InFlight(), InstanceHealth: in.HealthState()})
		}
		if up.Breaker != nil {
			us.Breaker = up.Breaker.State()
		}
		out = append(out, us)
	}
	return map[string]any{"upstreams": out}, nil
}

func (a *API) forceBreaker(r *http.Request, who string) (any, error) {
	name := r.PathValue("name")
	up := a.gw.Table().Upstreams[name]
	if up == nil {
		return nil, notFound("no upstream %q", name)
	}
	if up.Breaker == nil {
		return nil, badRequest("upstream %q has no breaker (breaker: disabled, or the legacy upstream without one)", name)
	}
	var req struct {
		State  string `json:"state"`
		Reason string `json:"reason"`
		TTL    string `json:"ttl"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	switch req.State {
	case "auto", "open", "closed":
	default:
		return nil, badRequest(`state must be "open", "closed" or "auto"`)
	}
	if strings.TrimSpace(req.Reason) == "" && req.State != "auto" {
		return nil, badRequest("say why: a reason is required (it goes to the audit log)")
	}
	var err error
	if req.State == "auto" {
		_, err = a.overrides.DeleteBreaker(r.Context(), name, who, req.Reason)
	} else {
		b := store.BreakerOverride{Upstream: name, State: req.State, Reason: req.Reason, By: who, At: time.Now().UTC()}
		if req.TTL != "" {
			d, perr := time.ParseDuration(req.TTL)
			if perr != nil || d <= 0 {
				return nil, badRequest("bad ttl %q: a duration like 30m or 1h", req.TTL)
			}
			b.Expires = b.At.Add(d)
		}
		_, err = a.overrides.SetBreaker(r.Context(), b)
	}
	var np *NotPersistedError
	if err != nil && !errors.As(err, &np) {
		return nil, a.storeError(err)
	}
	out := map[string]any{"upstream": name, "breaker": up.Breaker.State(), "persisted": np == nil}
	if np != nil {
		out["warning"] = np.Error()
	}
	return out, nil
}

// shadow reports every shadowed route of the serving table (and any route
// with results a reload removed, under the default thresholds): the
// verdict first, then counts, differing paths with examples, noise and
// shapes. ?top=N sets how many paths and shapes (default 10).
func (a *API) shadow(r *http.Request) (any, error) {
	top := 10
	if s := r.URL.Query().Get("top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return nil, badRequest("top must be a number from 1 to 1000")
		}
		top = n
	}
	store := a.gw.ShadowStore()
	out := []shadow.RouteReport{}
	seen := map[string]bool{}
	for _, rt := range a.gw.Table().Routes {
		if rt.Shadow == nil {
			continue
		}
		seen[rt.ID] = true
		var t *shadow.Tally
		if store != nil {
			t = store.Tally(rt.ID)
		}
		if t == nil {
			t = shadow.NewTally()
		}
		out = append(out, t.Report(rt.ID, rt.Shadow.Experiment.Ready, top))
	}
	if store != nil {
		for _, id := range store.Routes() {
			if !seen[id] {
				rep, _ := shadow.Report(store, id, shadow.DefaultReadiness, top)
				out = append(out, rep)
			}
		}
	}
	slices.SortFunc(out, func(x, y shadow.RouteReport) int { return strings.Compare(x.Route, y.Route) })
	return map[string]any{"routes": out}, nil
}

func (a *API) mismatches(r *http.Request) (any, error) {
	store := a.gw.ShadowStore()
	out := []shadow.Result{}
	if store != nil {
		out = append(out, store.Recent(r.PathValue("route"))...)
	}
	return map[string]any{"route": r.PathValue("route"), "mismatches": out}, nil
}

func (a *API) reload(r *http.Request, who string) (any, error) {
	t, err := a.gw.Reload()
	if err != nil {
		ae := &apiError{status: 422, code: "invalid_config", msg: "routes file rejected; the running table keeps serving"}
		if errors.Is(err, ErrStopped) {
			ae = &apiError{status: 503, code: "stopping", msg: err.Error()}
		}
		var ces config.ConfigErrors
		if errors.As(err, &ces) {
			for _, ce := range ces {
				ae.detail = append(ae.detail, ce.Error())
			}
		} else if ae.status == 422 {
			ae.detail = []string{err.Error()}
		}
		a.overrides.Record(r.Context(), store.Event{Time: time.Now().UTC(), Action: "reload", By: who, Result: "rejected"})
		return nil, ae
	}
	a.overrides.Record(r.Context(), store.Event{Time: time.Now().UTC(), Action: "reload", By: who, Result: "applied",
		New: fmt.Sprintf("generation %d", a.gw.Generation())})
	return map[string]any{"generation": a.gw.Generation(), "file": t.File, "routes": len(t.Routes), "summary": t.Summary()}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ErrStopped is what Gateway.Reload returns once the gateway is shutting
// down.
var ErrStopped = errors.New("the gateway is shutting down")

func (a *API) audit(r *http.Request) (any, error) {
	q := store.Query{Route: r.URL.Query().Get("route"), Upstream: r.URL.Query().Get("upstream"),
		Action: r.URL.Query().Get("action"), Before: r.URL.Query().Get("before")}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return nil, badRequest("limit must be a number from 1 to 1000")
		}
		q.Limit = n
	}
	events, err := a.overrides.Audit(r.Context(), q)
	if err != nil {
		if strings.HasPrefix(err.Error(), "bad event id") {
			return nil, badRequest("%v", err)
		}
		return nil, a.storeError(err)
	}
	return map[string]any{"events": events, "kept": a.overrides.AuditKept()}, nil
}

// FleetState is what /admin/fleet shows: the store, this replica, and
// every replica with a heartbeat in the store.
type FleetState struct {
	Store string `json:"store"` // "file" or "redis"
	Where string `json:"where"`
	Up    bool   `json:"up"`
	// Replica is this replica; Revision and Epoch the state it serves;
	// StartedFrom where that state came from at start (file, store, cache
	// or none).
	Replica     string          `json:"replica,omitempty"`
	Revision    int64           `json:"revision"`
	Epoch       string          `json:"epoch,omitempty"`
	StartedFrom string          `json:"started_from"`
	Replicas    []store.Replica `json:"replicas"`
	// ExpiryLeader holds the expiry lease.
	ExpiryLeader string `json:"expiry_leader,omitempty"`
	Error        string `json:"error,omitempty"`
}

func (a *API) fleet(r *http.Request) (any, error) {
	o := a.overrides
	st := o.Applied()
	fs := FleetState{Store: o.store.Kind(), Where: o.store.Where(), Up: true, Revision: st.Revision, Epoch: st.Epoch,
		StartedFrom: o.StartedFrom(), Replicas: []store.Replica{}}
	if o.redis == nil {
		return fs, nil
	}
	fs.Replica, fs.Up = o.redis.Replica(), o.redis.Up()
	reps, err := o.redis.Replicas(r.Context())
	if err != nil {
		fs.Up, fs.Error = false, err.Error()
		return fs, nil
	}
	fs.Replicas = reps
	if l, ok := o.lease.(*store.RedisLease); ok {
		fs.ExpiryLeader, _ = l.Holder(r.Context())
	}
	return fs, nil
}
