package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// shadow.go: shadow traffic with response comparison, in Scientist's words.
// Each route with a shadow section runs an Experiment: the response the
// client gets is the Control; the same request sent to the route's other
// side is the Candidate. Both become Observations; comparing them gives a
// Result (match or mismatch, with the differing paths). The client always
// gets the Control, unchanged and not delayed: candidates run after the
// control response is complete, on a bounded worker pool with a bounded
// queue; when the queue is full they are dropped and counted.

// ShadowConfig is a route's compiled shadow section.
type ShadowConfig struct {
	basisPoints uint32 // share of requests, in 1/100 %
	noiseBP     uint32 // share of sampled requests that also re-call control
	keys        []KeySource
	salt        string
	methods     methodBit
	maxBody     int64
	timeout     time.Duration
	headers     []string
	cmp         jsonComparer
}

// Percent is the sampled share of the route's requests.
func (s *ShadowConfig) Percent() float64 { return float64(s.basisPoints) / 100 }

// Observation is one side's answer.
type Observation struct {
	Side     string        `json:"side"`
	Status   int           `json:"status"`
	Duration time.Duration `json:"duration_ns"`
	Err      string        `json:"error,omitempty"`
	header   map[string]string
	body     []byte
	ctype    string
}

// Result is one comparison.
type Result struct {
	Time      time.Time         `json:"time"`
	Route     string            `json:"route"`
	Result    string            `json:"result"` // match, mismatch, error
	RequestID string            `json:"request_id"`
	Method    string            `json:"method,omitempty"`
	Path      string            `json:"path,omitempty"`
	Query     string            `json:"query,omitempty"`
	Header    map[string]string `json:"header,omitempty"`
	Control   *Observation      `json:"control,omitempty"`
	Candidate *Observation      `json:"candidate,omitempty"`
	Diffs     []Diff            `json:"diffs,omitempty"`
	Noisy     []string          `json:"noisy,omitempty"`
}

// Matched reports whether control and candidate agreed.
func (r *Result) Matched() bool { return r.Result == "match" }

// shadowJob is one sampled request: the candidate request, built while the
// client request was still readable, and the control as it streams.
type shadowJob struct {
	route    *Route
	cfg      *ShadowConfig
	reqID    string
	method   string
	path     string
	query    string
	header   map[string]string
	cand     *fasthttp.Request
	candUp   *Upstream
	candInst *Instance
	candSide Side
	// noise re-calls the control side (same request) when set.
	noise     *fasthttp.Request
	noiseUp   *Upstream
	noiseInst *Instance
	control   Observation
	truncated bool
}

// capture appends control body bytes up to the cap.
func (j *shadowJob) capture(p []byte) {
	if j.truncated {
		return
	}
	if int64(len(j.control.body)+len(p)) > j.cfg.maxBody {
		j.truncated = true
		return
	}
	j.control.body = append(j.control.body, p...)
}

func (j *shadowJob) free() {
	if j.cand != nil {
		fasthttp.ReleaseRequest(j.cand)
	}
	if j.noise != nil {
		fasthttp.ReleaseRequest(j.noise)
	}
}

// ShadowOptions configure the shadow engine; zero values take defaults.
type ShadowOptions struct {
	// Workers run candidate calls. Default 4.
	Workers int
	// Queue bounds waiting candidates; beyond it they are dropped. Default
	// 1000.
	Queue int
	// Recent is how many recent mismatches are kept per route. Default 100.
	Recent int
	// File, when set, receives every Result as a JSON line.
	File string
	// FileMaxBytes rotates File (to File.1) above this size. Default 64 MiB.
	FileMaxBytes int64
}

// ShadowEngine runs candidates and keeps results. It outlives route
// tables.
type ShadowEngine struct {
	queue   chan *shadowJob
	metrics *Metrics
	log     *slog.Logger
	store   *ShadowStore
	file    *jsonlFile
	wg      sync.WaitGroup
	closed  atomic.Bool
	mu      sync.Mutex // guards close of queue
}

// NewShadowEngine starts the workers.
func NewShadowEngine(o ShadowOptions, m *Metrics, log *slog.Logger) *ShadowEngine {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Queue <= 0 {
		o.Queue = 1000
	}
	if o.Recent <= 0 {
		o.Recent = 100
	}
	if o.FileMaxBytes <= 0 {
		o.FileMaxBytes = 64 << 20
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &ShadowEngine{queue: make(chan *shadowJob, o.Queue), metrics: m, log: log.With("component", "shadow"), store: newShadowStore(o.Recent)}
	if o.File != "" {
		e.file = &jsonlFile{path: o.File, max: o.FileMaxBytes}
	}
	for range o.Workers {
		e.wg.Add(1)
		go e.work()
	}
	return e
}

// Store is where results are kept.
func (e *ShadowEngine) Store() *ShadowStore { return e.store }

// Close stops accepting jobs and waits for the queued ones.
func (e *ShadowEngine) Close() {
	e.mu.Lock()
	if e.closed.CompareAndSwap(false, true) {
		close(e.queue)
	}
	e.mu.Unlock()
	e.wg.Wait()
	if e.file != nil {
		e.file.close()
	}
}

// submit queues a job without ever waiting.
func (e *ShadowEngine) submit(j *shadowJob) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		e.count(j.route.ID, "dropped")
		j.free()
		return
	}
	select {
	case e.queue <- j:
	default:
		e.count(j.route.ID, "dropped")
		e.store.add(&Result{Route: j.route.ID, Result: "dropped"}, false)
		j.free()
	}
}

func (e *ShadowEngine) count(route, result string) {
	if e.metrics != nil {
		e.metrics.ShadowResults.WithLabelValues(route, result).Inc()
	}
}

// skip counts a sampled request that could not be compared.
func (e *ShadowEngine) skip(route, reason string) {
	e.count(route, "skipped")
	if e.metrics != nil {
		e.metrics.ShadowSkipped.WithLabelValues(route, reason).Inc()
	}
}

func (e *ShadowEngine) work() {
	defer e.wg.Done()
	for j := range e.queue {
		if e.closed.Load() {
			// Shutting down: what is still queued is dropped, counted.
			e.count(j.route.ID, "dropped")
		} else {
			e.run(j)
		}
		j.free()
	}
}

// call runs one shadow request and observes it; the body is read up to
// max (a longer one is an error for comparison purposes).
func call(up *Upstream, inst *Instance, req *fasthttp.Request, timeout time.Duration, max int64) (Observation, bool) {
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	start := time.Now()
	err := inst.client.DoTimeout(req, resp, timeout)
	var o Observation
	if err != nil {
		o.Duration = time.Since(start)
		kind, _ := classify(err)
		o.Err = kind
		return o, false
	}
	o.Status = resp.StatusCode()
	o.ctype = string(resp.Header.ContentType())
	o.header = map[string]string{}
	resp.Header.VisitAll(func(k, v []byte) { o.header[string(k)] = string(v) })
	tooLong := false
	if s := resp.BodyStream(); s != nil {
		b, rerr := io.ReadAll(io.LimitReader(s, max+1))
		_ = resp.CloseBodyStream()
		if rerr != nil {
			o.Duration = time.Since(start)
			o.Err = "body"
			return o, false
		}
		o.body = b
	} else {
		o.body = append([]byte(nil), resp.Body()...)
	}
	if int64(len(o.body)) > max {
		tooLong = true
	}
	o.Duration = time.Since(start)
	for _, p := range up.plugins {
		if n, ok := p.(StatusNormalizer); ok {
			if m := n.NormalizeStatus(o.Status, o.ctype, len(resp.Header.ContentEncoding()) > 0, o.body); m != 0 {
				o.Status = m
			}
		}
	}
	return o, !tooLong
}

// StatusNormalizer is implemented by upstream plugins that know what a
// response means (the legacy adapter's normalize): shadow comparison uses
// it on candidate answers from that upstream.
type StatusNormalizer interface {
	NormalizeStatus(status int, contentType string, compressed bool, body []byte) int
}

func (e *ShadowEngine) run(j *shadowJob) {
	route := j.route.ID
	cand, ok := call(j.candUp, j.candInst, j.cand, j.cfg.timeout, j.cfg.maxBody)
	cand.Side = j.candSide.String()
	if e.metrics != nil {
		e.metrics.ShadowDuration.WithLabelValues(route, cand.Side).Observe(cand.Duration.Seconds())
	}
	res := &Result{Time: time.Now().UTC(), Route: route, RequestID: j.reqID, Method: j.method, Path: j.path, Query: j.query,
		Header: j.header, Control: &j.control, Candidate: &cand}
	switch {
	case cand.Err != "":
		res.Result = "error"
		e.log.Debug("shadow candidate failed", "route", route, "request_id", j.reqID, "err", cand.Err)
	case !ok:
		e.skip(route, "body_too_large")
		return
	default:
		diffs := compareObservations(j.cfg, &j.control, &cand)
		if j.noise != nil {
			again, ok2 := call(j.noiseUp, j.noiseInst, j.noise, j.cfg.timeout, j.cfg.maxBody)
			if again.Err == "" && ok2 {
				again.Side = j.control.Side
				for _, d := range compareObservations(j.cfg, &j.control, &again) {
					e.store.addNoise(route, d)
				}
			}
		}
		diffs, res.Noisy = e.store.withoutNoise(route, diffs)
		res.Diffs = diffs
		res.Result = "match"
		if len(diffs) > 0 {
			res.Result = "mismatch"
		}
	}
	// Keep what a person needs, not the bodies.
	j.control.body, j.control.header, cand.body, cand.header = nil, nil, nil, nil
	e.count(route, res.Result)
	e.store.add(res, true)
	if e.file != nil {
		if err := e.file.write(res); err != nil {
			if e.metrics != nil {
				e.metrics.ShadowFileErrors.Inc()
			}
			e.log.Error("shadow results file write failed", "file", e.file.path, "err", err)
		}
	}
}

// compareObservations compares status, the configured headers and the
// body (JSON structurally, anything else byte for byte).
func compareObservations(cfg *ShadowConfig, a, b *Observation) []Diff {
	var out []Diff
	if a.Status != b.Status {
		out = append(out, Diff{Path: "status", Control: itoa(a.Status), Candidate: itoa(b.Status)})
	}
	for _, h := range cfg.headers {
		av, bv := a.header[h], b.header[h]
		if strings.EqualFold(h, "Content-Type") {
			av, bv = mediaType(av), mediaType(bv)
		}
		if av != bv {
			out = append(out, Diff{Path: "header:" + h, Control: cut(av, 200), Candidate: cut(bv, 200)})
		}
	}
	if isJSON(a.ctype) && isJSON(b.ctype) {
		av, aok := decodeJSON(a.body)
		bv, bok := decodeJSON(b.body)
		if aok && bok {
			cmp := cfg.cmp
			return append(out, cmp.Compare(av, bv)...)
		}
	}
	if !bytes.Equal(a.body, b.body) {
		out = append(out, Diff{Path: "body", Control: digest(a.body), Candidate: digest(b.body)})
	}
	return out
}

func mediaType(v string) string {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(v))
	}
	return mt
}

func isJSON(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:8]) + " (" + itoa(len(b)) + " bytes)"
}

// redactedHeaders are never stored: credentials and identity.
var redactedHeaders = []string{"Authorization", "Cookie", "Proxy-Authorization", "X-Api-Key"}

// sensitiveQuery reports query parameters whose values are redacted.
func sensitiveQuery(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"token", "secret", "password", "passwd", "key", "auth", "session", "signature", "code"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

func redactQuery(q string) string {
	if q == "" {
		return ""
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		return "[unparsed]"
	}
	for k := range vals {
		if sensitiveQuery(k) {
			vals[k] = []string{"[redacted]"}
		}
	}
	return vals.Encode()
}

// ShadowStore keeps per-route counts, the most frequent differing paths
// with an example, noise evidence and the recent mismatches.
type ShadowStore struct {
	mu     sync.Mutex
	recent int
	routes map[string]*routeShadow
}

type routeShadow struct {
	counts   map[string]int64
	paths    map[string]*PathStat
	noise    map[string]*PathStat
	mismatch []*Result // ring, newest last
}

// PathStat counts one differing path (array indices generalised to [*]).
type PathStat struct {
	Path    string `json:"path"`
	Count   int64  `json:"count"`
	Example Diff   `json:"example"`
}

// RouteReport summarises a route's experiment.
type RouteReport struct {
	Route     string           `json:"route"`
	Counts    map[string]int64 `json:"counts"`
	Compared  int64            `json:"compared"`
	MatchRate float64          `json:"match_rate"`
	TopPaths  []PathStat       `json:"top_paths"`
	Noisy     []PathStat       `json:"noisy"`
}

func newShadowStore(recent int) *ShadowStore {
	return &ShadowStore{recent: recent, routes: map[string]*routeShadow{}}
}

func (s *ShadowStore) route(id string) *routeShadow {
	r := s.routes[id]
	if r == nil {
		r = &routeShadow{counts: map[string]int64{}, paths: map[string]*PathStat{}, noise: map[string]*PathStat{}}
		s.routes[id] = r
	}
	return r
}

func (s *ShadowStore) add(res *Result, keep bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.route(res.Route)
	r.counts[res.Result]++
	if res.Result != "mismatch" || !keep {
		return
	}
	for _, d := range res.Diffs {
		g := genericPath(d.Path)
		ps := r.paths[g]
		if ps == nil {
			ps = &PathStat{Path: g, Example: d}
			r.paths[g] = ps
		}
		ps.Count++
	}
	r.mismatch = append(r.mismatch, res)
	if len(r.mismatch) > s.recent {
		r.mismatch = slices.Delete(r.mismatch, 0, len(r.mismatch)-s.recent)
	}
}

func (s *ShadowStore) addNoise(route string, d Diff) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.route(route)
	g := genericPath(d.Path)
	ps := r.noise[g]
	if ps == nil {
		ps = &PathStat{Path: g, Example: d}
		r.noise[g] = ps
	}
	ps.Count++
}

// withoutNoise drops differences at paths known to be noisy.
func (s *ShadowStore) withoutNoise(route string, diffs []Diff) (kept []Diff, noisy []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.route(route)
	for _, d := range diffs {
		if _, ok := r.noise[genericPath(d.Path)]; ok {
			noisy = append(noisy, d.Path)
			continue
		}
		kept = append(kept, d)
	}
	return kept, noisy
}

// Report summarises every route, sorted by route id.
func (s *ShadowStore) Report() []RouteReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []RouteReport
	for id, r := range s.routes {
		rep := RouteReport{Route: id, Counts: map[string]int64{}}
		for k, v := range r.counts {
			rep.Counts[k] = v
		}
		rep.Compared = r.counts["match"] + r.counts["mismatch"]
		if rep.Compared > 0 {
			rep.MatchRate = float64(r.counts["match"]) / float64(rep.Compared)
		}
		rep.TopPaths = topPaths(r.paths, 10)
		rep.Noisy = topPaths(r.noise, 10)
		out = append(out, rep)
	}
	slices.SortFunc(out, func(a, b RouteReport) int { return strings.Compare(a.Route, b.Route) })
	return out
}

// Recent returns a route's recent mismatches, newest last.
func (s *ShadowStore) Recent(route string) []Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.routes[route]
	if r == nil {
		return nil
	}
	out := make([]Result, len(r.mismatch))
	for i, m := range r.mismatch {
		out[i] = *m
	}
	return out
}

func topPaths(m map[string]*PathStat, n int) []PathStat {
	out := make([]PathStat, 0, len(m))
	for _, ps := range m {
		out = append(out, *ps)
	}
	slices.SortFunc(out, func(a, b PathStat) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// jsonlFile appends results as JSON lines, rotating by size. Writes happen
// on shadow workers, never on the request path.
type jsonlFile struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
}

func (w *jsonlFile) write(r *Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		f, err := os.OpenFile(w.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		w.f, w.size = f, st.Size()
	}
	if w.size+int64(len(b)) > w.max && w.size > 0 {
		w.f.Close()
		w.f = nil
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			return err
		}
		f, err := os.OpenFile(w.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return err
		}
		w.f, w.size = f, 0
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	return err
}

func (w *jsonlFile) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// shadowSampled decides whether the request joins its route's experiment:
// sampled on the cohort key, a shadowed method. It counts what it skips.
func (rt *Router) shadowSampled(st *reqState) bool {
	sh := st.route.shadow
	if sh == nil || rt.shadow == nil || sh.basisPoints == 0 {
		return false
	}
	can := Canary{Keys: sh.keys, Salt: sh.salt}
	key, _ := can.CohortKey(&st.keys)
	b := can.Bucket(key)
	if b >= sh.basisPoints {
		return false
	}
	if mb, _ := methodBitOf(st.fctx.Method()); mb&sh.methods == 0 {
		rt.shadow.skip(st.route.ID, "method")
		return false
	}
	st.shadowOn, st.shadowBk = true, b
	return true
}

// startShadow builds the candidate request while the client request is
// still readable (after the primary's response headers arrived); it runs
// once the control response is complete.
func (rt *Router) startShadow(c *fiber.Ctx, st *reqState) {
	r, sh := st.route, st.route.shadow
	switch {
	case st.fallback != "":
		rt.shadow.skip(r.ID, "fallback")
		return
	case !st.replayable:
		rt.shadow.skip(r.ID, "body_too_large")
		return
	}
	candSide := SideNew
	if st.side == SideNew {
		candSide = SideLegacy
	}
	candTgt := r.Target(candSide)
	if candTgt == nil || candTgt.Upstream == nil {
		rt.shadow.skip(r.ID, "no_candidate")
		return
	}
	inst := candTgt.Upstream.Selector.Select(candTgt.Upstream.Instances, c)
	if inst == nil {
		rt.shadow.skip(r.ID, "no_instance")
		return
	}
	reqID := b2s(st.reqID) + "-shadow"
	j := &shadowJob{route: r, cfg: sh, reqID: reqID, method: strings.Clone(st.method), path: strings.Clone(st.dec), candUp: candTgt.Upstream, candInst: inst, candSide: candSide}
	if st.hasQuery {
		j.query = redactQuery(string(st.query))
	}
	j.header = redactedRequestHeaders(st)
	j.cand = rt.shadowRequest(c, st, candTgt, inst, reqID)
	resp := &st.upResp
	j.control = Observation{Side: st.side.String(), Status: st.status(), ctype: string(resp.Header.ContentType()), header: map[string]string{}}
	for _, h := range sh.headers {
		j.control.header[h] = string(resp.Header.Peek(h))
	}
	j.control.Duration = time.Since(st.callStart)
	if sh.noiseBP > 0 && uint64(st.shadowBk)*10000 < uint64(sh.basisPoints)*uint64(sh.noiseBP) {
		ctl := r.Target(st.side)
		if ni := ctl.Upstream.Selector.Select(ctl.Upstream.Instances, c); ni != nil {
			j.noise, j.noiseUp, j.noiseInst = rt.shadowRequest(c, st, ctl, ni, reqID+"-noise"), ctl.Upstream, ni
		}
	}
	if !st.streaming {
		// The control body is already in place (small or read by an
		// upstream plugin); a streamed one is captured as it is sent.
		j.capture(st.fctx.Response.Body())
	}
	st.shadow = j
}

// shadowRequest builds an owned copy of the request for tgt.
func (rt *Router) shadowRequest(c *fiber.Ctx, st *reqState, tgt *Target, inst *Instance, reqID string) *fasthttp.Request {
	req := fasthttp.AcquireRequest()
	rt.buildRequest(c, st, tgt, inst, req)
	req.Header.Set(fiber.HeaderXRequestID, reqID)
	req.Header.Set("X-Strangler-Shadow", "1")
	if st.bodyRaw != nil {
		req.SetBody(st.bodyRaw)
	}
	return req
}

// redactedRequestHeaders keeps the client's request headers for the
// mismatch store, with credentials and identity headers redacted.
func redactedRequestHeaders(st *reqState) map[string]string {
	out := map[string]string{}
	secret := func(k string) bool {
		for _, h := range redactedHeaders {
			if strings.EqualFold(h, k) {
				return true
			}
		}
		for _, op := range st.injects {
			if strings.EqualFold(op.name, k) {
				return true
			}
		}
		return false
	}
	st.fctx.Request.Header.VisitAll(func(k, v []byte) {
		ks := string(k)
		if secret(ks) {
			out[ks] = "[redacted]"
			return
		}
		out[ks] = cut(string(v), 200)
	})
	return out
}
