package proxy

import (
	"io"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/internal/hdr"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/shadow"
	"github.com/strangler/strangler/upstream"
	"github.com/valyala/fasthttp"
)

// shadowSampled decides whether the request joins its route's experiment:
// sampled on the cohort key, a shadowed method. It counts what it skips.
func (p *Proxy) shadowSampled(st *reqState) bool {
	sh := st.route.Shadow
	eng := p.shadow.Load()
	if sh == nil || eng == nil || sh.Sample.BasisPoints == 0 {
		return false
	}
	key, _ := sh.Sample.CohortKey(&st.keys)
	b := sh.Sample.Bucket(key)
	if b >= sh.Sample.BasisPoints {
		return false
	}
	if st.mbit&sh.Methods == 0 {
		eng.Skip(st.route.ID, "method")
		return false
	}
	st.shadowOn, st.shadowBk = true, b
	return true
}

// startShadow builds the candidate request while the client request is
// still readable (after the primary's response headers arrived); it is
// sent once the control response is complete (finish submits the job).
func (p *Proxy) startShadow(c *fiber.Ctx, st *reqState) {
	eng := p.shadow.Load()
	r, sh := st.route, st.route.Shadow
	switch {
	case st.fallback != "":
		eng.Skip(r.ID, "fallback")
		return
	case !st.replayable:
		eng.Skip(r.ID, "body_too_large")
		return
	}
	candSide := routing.SideNew
	if st.side == routing.SideNew {
		candSide = routing.SideLegacy
	}
	if candSide == routing.SideNew && st.legacyOnly != nil {
		// A request only legacy may serve (a legacy session without a
		// token) never reaches new, not even as a shadow copy: new would
		// get it without a verified identity (issue 13, auth on the side
		// the request really goes to).
		eng.Skip(r.ID, "legacy_only")
		return
	}
	candTgt := r.Target(candSide)
	if candTgt == nil || candTgt.Upstream == nil {
		eng.Skip(r.ID, "no_candidate")
		return
	}
	x := sh.Experiment
	reqID := string(st.reqID()) + "-shadow"
	cand, skip := p.shadowCall(c, st, candTgt, reqID)
	if skip != "" {
		eng.Skip(r.ID, skip)
		return
	}
	j := &shadow.Job{Experiment: x, RequestID: reqID, Method: strings.Clone(st.method), Path: strings.Clone(st.path.Dec), Candidate: cand}
	query := ""
	if st.path.HasQuery {
		query = string(st.path.Query)
		j.Query = x.RedactQuery(query)
	}
	j.Shape = shadow.Shape(j.Method, x.Template, query)
	j.Header = redactedRequestHeaders(st, x)
	resp := &st.bufs.ex.resp
	j.Control = shadow.Observation{Name: st.side.String(), Status: st.bufs.ex.status(), ContentType: string(resp.Header.ContentType()),
		Encoding: string(resp.Header.ContentEncoding()), Header: observedHeaders(&resp.Header, x.Headers), Duration: time.Since(st.callStart)}
	if sh.NoiseBasisPoints > 0 && uint64(st.shadowBk)*10000 < uint64(sh.Sample.BasisPoints)*uint64(sh.NoiseBasisPoints) {
		if noise, skip := p.shadowCall(c, st, r.Target(st.side), reqID+"-noise"); skip == "" {
			j.Noise = noise
		}
	}
	if !st.streaming {
		// The control body is already in place (small or read by an
		// upstream plugin); a streamed one is captured as it is sent.
		j.Capture(st.fctx.Response.Body())
	}
	st.shadow = j
}

// shadowCall builds an owned copy of the request for tgt, to be sent by a
// shadow worker through the same send as every call.
func (p *Proxy) shadowCall(c *fiber.Ctx, st *reqState, tgt *routing.Target, reqID string) (*shadowCall, string) {
	up := tgt.Upstream
	inst := up.Pick(nil)
	if inst == nil {
		return nil, "no_instance"
	}
	sc := shadowCalls.Get().(*shadowCall)
	sc.p, sc.tgt, sc.route, sc.reqID, sc.identity = p, tgt, st.route.ID, reqID, strings.Clone(st.identity)
	sc.headers = st.route.Shadow.Experiment.Headers
	x := &sc.x
	x.up, x.inst = up, inst
	_ = p.buildRequest(c, st, tgt, inst, &x.out, false)
	hdr.SetRequest(&x.out.Header, headerRequestID, reqID)
	hdr.SetRequest(&x.out.Header, "X-Strangler-Shadow", "1")
	if st.bodyRaw != nil {
		x.out.SetBody(st.bodyRaw) // a copy: the client's buffer is reused
	}
	return sc, ""
}

// shadowCall is a shadow.Call: a request built while the client request
// was readable, sent later by a shadow worker through send, so the
// candidate side's breaker and bulkhead apply to it (an open breaker or a
// full bulkhead sheds it, counted as skipped). It is also the
// plugin.Request its upstream plugins see.
type shadowCall struct {
	p        *Proxy
	tgt      *routing.Target
	x        exchange
	route    string
	reqID    string
	identity string
	headers  []string
}

var shadowCalls = sync.Pool{New: func() any { return &shadowCall{} }}

// Do implements shadow.Call.
func (sc *shadowCall) Do(timeout time.Duration, maxBody int64) (shadow.Observation, string) {
	start := time.Now()
	deadline := start.Add(timeout)
	if t := sc.tgt.Upstream.Timeouts.Total; t > 0 && t < timeout {
		deadline = start.Add(t)
	}
	var slot *upstream.Bulkhead
	defer func() { slot.Release() }()
	o := shadow.Observation{Name: sc.tgt.Side.String()}
	err := sc.p.send(sc, sc.tgt, &sc.x, &slot, deadline, nil)
	if err != nil {
		o.Duration = time.Since(start)
		switch k := upstream.KindOf(err); k {
		case upstream.KindBreakerOpen, upstream.KindOverloaded, upstream.KindNoInstance:
			return o, k.String()
		case 0:
			o.Err = "protocol"
		default:
			o.Err = k.String()
		}
		return o, ""
	}
	resp := &sc.x.resp
	o.Status = sc.x.status()
	o.ContentType = string(resp.Header.ContentType())
	o.Encoding = string(resp.Header.ContentEncoding())
	o.Header = observedHeaders(&resp.Header, sc.headers)
	body, rerr := sc.body(maxBody)
	o.Duration = time.Since(start)
	switch {
	case rerr != nil:
		o.Err = "body"
		return o, ""
	case int64(len(body)) > maxBody:
		return o, "body_too_large"
	}
	o.Body = body
	return o, ""
}

// body reads the response body, up to max+1 bytes, and closes it.
func (sc *shadowCall) body(max int64) ([]byte, error) {
	x := &sc.x
	if x.peekFull {
		return append([]byte(nil), x.peek...), nil
	}
	s := x.resp.BodyStream()
	if s == nil {
		return append([]byte(nil), x.resp.Body()...), nil
	}
	defer x.resp.CloseBodyStream()
	var src io.Reader = s
	if x.peekPrefix {
		src = io.MultiReader(strings.NewReader(string(x.peek)), s)
	}
	return io.ReadAll(io.LimitReader(src, max+1))
}

// Release implements shadow.Call.
func (sc *shadowCall) Release() {
	sc.x.reset()
	sc.p, sc.tgt, sc.headers = nil, nil, nil
	sc.route, sc.reqID, sc.identity = "", "", ""
	shadowCalls.Put(sc)
}

// The plugin.Request methods, for the upstream plugins of a shadow call:
// the request is already built, so only reading makes sense.

func (sc *shadowCall) RouteID() string                     { return sc.route }
func (sc *shadowCall) RequestID() string                   { return sc.reqID }
func (sc *shadowCall) SetUpstreamHeader(string, string)    {}
func (sc *shadowCall) RemoveUpstreamHeader(string)         {}
func (sc *shadowCall) SetIdentity(string)                  {}
func (sc *shadowCall) Identity() string                    { return sc.identity }
func (sc *shadowCall) LegacyOnly(error)                    {}
func (sc *shadowCall) UpstreamBody(max int) ([]byte, bool) { return sc.x.upstreamBody(max) }

// observedHeaders copies the compared headers of a response: each name's
// values in the order they came (names compare case-insensitively).
func observedHeaders(h *fasthttp.ResponseHeader, names []string) map[string][]string {
	out := make(map[string][]string, len(names))
	var buf [8][]byte
	for _, name := range names {
		// The upstream's names arrive as it wrote them (see
		// internal/hdr): "x-version" is X-Version.
		vals := hdr.PeekAllResponse(buf[:0], h, name)
		if len(vals) == 0 {
			continue
		}
		vs := make([]string, len(vals))
		for i, v := range vals {
			vs[i] = string(v) // a copy: the response is reused
		}
		out[name] = vs
	}
	return out
}

// redactedRequestHeaders keeps the client's request headers for the
// mismatch store, with credentials, the route's redacted headers and the
// headers plugins set redacted.
func redactedRequestHeaders(st *reqState, x *shadow.Experiment) map[string]string {
	out := map[string]string{}
	secret := func(k string) bool {
		if x.RedactHeader(k) {
			return true
		}
		for _, op := range st.bufs.injects {
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
		out[ks] = shadow.HeaderValue(string(v))
	})
	return out
}
