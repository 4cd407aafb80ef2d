package admin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/shadow"
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
	tokens    map[string]string // token -> name
	readAuth  bool
	dataAuth  bool
	log       *slog.Logger
}

// New returns the admin API over gw and the live overrides. tokens map a
// bearer token to the name audit events show (LoadTokens); readAuth makes
// every read require a token. Reads of request and response data require
// one by default: see OpenData.
func New(gw Gateway, ov *Overrides, tokens map[string]string, readAuth bool, m *Metrics, log *slog.Logger) *API {
	return &API{gw: gw, overrides: ov, metrics: m, tokens: tokens, readAuth: readAuth, dataAuth: true, log: log.With("component", "admin")}
}

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
}

// apiError is an error with its HTTP status.
type apiError struct {
	status int
	code   string
	msg    string
	detail []string
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
	writeJSON(w, ae.status, body)
}

// caller returns the token's name, comparing in constant time.
func (a *API) caller(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 8 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	got := []byte(strings.TrimSpace(h[7:]))
	name, found := "", 0
	for tok, n := range a.tokens {
		if subtle.ConstantTimeCompare(got, []byte(tok)) == 1 {
			name, found = n, 1
		}
	}
	return name, found == 1
}

// readData serves a read that returns request or response data: it needs
// a valid token unless data reads are open.
func (a *API) readData(f func(r *http.Request) (any, error)) http.HandlerFunc {
	if !a.dataAuth {
		return a.read(f)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if len(a.tokens) == 0 {
			writeAPIError(w, &apiError{status: 403, code: "no_token", msg: "this endpoint returns request and response data and needs a token: set STRANGLER_ADMIN_TOKEN or server.admin.tokens_file (or server.admin.data_requires_token: false)"})
			return
		}
		if _, ok := a.caller(r); !ok {
			a.log.Warn("admin data read refused", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="strangler-admin"`)
			writeAPIError(w, &apiError{status: 401, code: "unauthorized", msg: "a valid bearer token is required: this endpoint returns request and response data"})
			return
		}
		v, err := f(r)
		if err != nil {
			writeAPIError(w, err)
			return
		}
		writeJSON(w, 200, v)
	}
}

func (a *API) read(f func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.readAuth {
			if _, ok := a.caller(r); !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="strangler-admin"`)
				writeAPIError(w, &apiError{status: 401, code: "unauthorized", msg: "a bearer token is required"})
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

func (a *API) mutate(action string, f func(r *http.Request, who string) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		count := func(result string) { a.metrics.Mutations.WithLabelValues(action, result).Inc() }
		if len(a.tokens) == 0 {
			count("denied")
			writeAPIError(w, &apiError{status: 403, code: "read_only", msg: "the admin API is read-only: set STRANGLER_ADMIN_TOKEN or server.admin.tokens_file"})
			return
		}
		who, ok := a.caller(r)
		if !ok {
			count("denied")
			a.log.Warn("admin mutation refused", "action", action, "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="strangler-admin"`)
			writeAPIError(w, &apiError{status: 401, code: "unauthorized", msg: "a valid bearer token is required"})
			return
		}
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
	return map[string]any{"generation": a.gw.Generation(), "file": t.File, "routes": out}, nil
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
	prev, err := a.overrides.Set(ov)
	var np *NotPersistedError
	if err != nil && !errors.As(err, &np) {
		var ae *apiError
		if !errors.As(err, &ae) {
			return nil, badRequest("%v", err)
		}
		return nil, err
	}
	a.log.Info("audit", "action", action, "by", who, "route", id, "reason", req.Reason,
		"previous", prev.Describe(), "new", ov.Describe(), "persisted", np == nil)
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
	prev, err := a.overrides.Delete(id)
	var np *NotPersistedError
	if err != nil && !errors.As(err, &np) {
		return nil, err
	}
	if prev == nil {
		return nil, notFound("route %q has no override", id)
	}
	a.log.Info("audit", "action", "unflip", "by", who, "route", id, "previous", prev.Describe(), "new", "routes.yaml", "persisted", np == nil)
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

// InstanceState is one instance of an upstream.
type InstanceState struct {
	URL      string `json:"url"`
	InFlight int    `json:"in_flight"`
}

func (a *API) upstreams(*http.Request) (any, error) {
	t := a.gw.Table()
	out := []UpstreamState{}
	for _, name := range sortedKeys(t.Upstreams) {
		up := t.Upstreams[name]
		us := UpstreamState{Name: name, Legacy: up == t.Legacy, InFlight: up.Bulkhead.InFlight()}
		for _, in := range up.Instances {
			us.Instances = append(us.Instances, InstanceState{URL: in.URL, InFlight: in.InFlight()})
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
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	var f upstream.Forced
	switch req.State {
	case "auto":
		f = upstream.ForceAuto
	case "open":
		f = upstream.ForceOpen
	case "closed":
		f = upstream.ForceClosed
	default:
		return nil, badRequest(`state must be "open", "closed" or "auto"`)
	}
	if strings.TrimSpace(req.Reason) == "" && req.State != "auto" {
		return nil, badRequest("say why: a reason is required (it goes to the audit log)")
	}
	prev := up.Breaker.State()
	up.Breaker.Force(f)
	a.log.Info("audit", "action", "breaker", "by", who, "upstream", name, "reason", req.Reason, "previous", prev, "new", up.Breaker.State())
	return map[string]string{"upstream": name, "breaker": up.Breaker.State()}, nil
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

func (a *API) reload(_ *http.Request, who string) (any, error) {
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
		a.log.Info("audit", "action", "reload", "by", who, "result", "rejected")
		return nil, ae
	}
	a.log.Info("audit", "action", "reload", "by", who, "result", "applied", "generation", a.gw.Generation())
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
