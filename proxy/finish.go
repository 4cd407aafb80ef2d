package proxy

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"
)

// finish records the request once its response is complete: metrics, the
// access log line, the shadow job's submission, and the release of its
// state. werr is the error writing the response body to the client, if
// any.
func (p *Proxy) finish(st *reqState, werr error) {
	fctx := st.fctx
	status := fctx.Response.StatusCode()
	dur := time.Since(st.start)
	bytes := st.resp.n
	if !st.streaming {
		bytes = int64(len(fctx.Response.Body()))
	}
	counted := status
	if m := st.bufs.ex.meant; m != 0 && st.upErr == nil && st.reason == "" {
		// An upstream plugin says what the answer meant (a legacy error
		// served with 200): metrics see the truth.
		counted = m
	}
	if st.route != nil {
		p.metrics.forRoute(st.route.ID, st.sideLabel()).observe(counted, dur.Seconds(), bytes)
		if p.observer != nil {
			// An answer the gateway made before deciding (an auth
			// plugin's 401) counts for the route's configured side.
			p.observer.Observe(st.method, &st.path, st.route, st.side, counted, dur, bytes)
		}
	}
	if j := st.shadow; j != nil {
		st.shadow = nil
		eng := p.shadow.Load()
		switch {
		case eng == nil:
			j.Release()
		case werr == nil:
			eng.Submit(j)
		default:
			eng.Skip(j.Experiment.Route, "control_incomplete")
			j.Release()
		}
	}
	if p.access != nil {
		p.logAccess(st, status, counted, dur, bytes, werr)
	}
	p.end(st)
}

// logAccess writes the request's access log line.
func (p *Proxy) logAccess(st *reqState, status, counted int, dur time.Duration, bytes int64, werr error) {
	routeID, side, up := "", "", ""
	if st.route != nil {
		routeID, side = st.route.ID, st.sideLabel()
	}
	if x := st.bufs.ex.up; x != nil {
		up = x.Name
	}
	attrs := [...]slog.Attr{
		slog.String("request_id", b2s(st.reqID())),
		slog.String("route", routeID),
		slog.String("side", side),
		slog.String("upstream", up),
		slog.String("method", st.method),
		slog.String("path", st.path.Dec),
		slog.Int("status", status),
		slog.Float64("duration", dur.Seconds()),
		slog.Int64("bytes", bytes),
		slog.String("client", b2s(st.clientIPText())),
	}
	n := len(attrs)
	extra := [6]slog.Attr{}
	k := 0
	if counted != status {
		extra[k] = slog.Int("meant_status", counted)
		k++
	}
	if st.fallback != "" {
		extra[k] = slog.String("fallback", st.fallback)
		k++
	}
	if st.attempts > 0 {
		extra[k] = slog.Int("retries", st.attempts)
		k++
	}
	if st.upErr != nil {
		extra[k] = slog.String("upstream_error", st.upErr.Kind.String())
		k++
	}
	if st.reason != "" {
		extra[k] = slog.String("reason", st.reason)
		k++
	}
	if werr != nil {
		extra[k] = slog.String("client_error", clientErrText(werr))
		k++
	}
	all := append(attrs[:n:n], extra[:k]...)
	p.access.LogAttrs(context.Background(), slog.LevelInfo, "request", all...)
}

func clientErrText(err error) string {
	if errors.Is(err, fasthttp.ErrTimeout) {
		return "timeout"
	}
	return "write failed"
}
