package proxy

import (
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/upstream"
	"github.com/valyala/fasthttp"
)

// headerRequestID is the request id header, in the case the gateway
// writes it.
const headerRequestID = "X-Request-Id"

// The client's own failures while its body is read. They are
// RequestErrors like every rejection: 4xx, counted by code, never against
// a breaker.
var (
	errBodyTooLarge  = reject(413, "body_too_large", "request body too large")
	errClientTimeout = reject(408, "client_timeout", "request body not received in time")
	errClientBody    = reject(400, "bad_body", "malformed or truncated request body")
	// An upstream configured with host_header: client needs the client's
	// Host; an HTTP/1.0 request may have none.
	errNoHostForUpstream = reject(400, "bad_host", "missing Host header")
)

// writeError maps an error from a route's handler chain to the client
// response (httputil's ErrorHandler, oxy's utils.ErrorHandler): one place
// decides every status the gateway itself produces, from the error's type:
// a *plugin.RequestError (the client's fault: 4xx), an *upstream.Error
// (its Kind decides 502, 503 or 504), anything else 500.
func (p *Proxy) writeError(st *reqState, err error) {
	fctx := st.fctx
	// Whatever the upstream started to send is discarded (a plugin may fail
	// after the proxy set up a streamed body).
	if st.streaming {
		st.resp.detached = true
		st.streaming = false
	}
	fctx.Response.Reset()
	var re *plugin.RequestError
	var ue *upstream.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &re):
		st.reason = re.Code
		p.metrics.Rejected.WithLabelValues(re.Code).Inc()
		if re.Status == 413 || re.Status == 408 || re.Status == 400 {
			// The rest of the request cannot be trusted to be framed.
			fctx.SetConnectionClose()
		}
		writeJSONError(fctx, re.Status, re.Code, re.Message, st.reqID())
		for _, h := range re.Header {
			fctx.Response.Header.Set(h[0], h[1])
		}
	case errors.As(err, &ue):
		status, code, msg := ue.Kind.Status()
		writeJSONError(fctx, status, code, msg, st.reqID())
		if status == 503 {
			fctx.Response.Header.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(ue.RetryAfter, 1)))
		}
		if ue.Kind == upstream.KindBreakerOpen {
			fctx.Response.Header.Set("X-Strangler-Breaker", "open")
		}
	case errors.As(err, &fe):
		writeJSONError(fctx, fe.Code, "error", statusText(fe.Code), st.reqID())
	default:
		p.log.Error("request failed", "route", st.RouteID(), "request_id", b2s(st.reqID()), "err", err)
		writeJSONError(fctx, 500, "internal_error", "internal error", st.reqID())
	}
	if st.table.Server.ExposeRoute && st.route != nil {
		fctx.Response.Header.Set("X-Strangler-Side", st.sideLabel())
		fctx.Response.Header.Set("X-Strangler-Route", st.route.ID)
	}
}

func statusText(code int) string {
	if t := fasthttp.StatusMessage(code); t != "" {
		return t
	}
	return "error"
}

// writeJSONError writes a short JSON error: a stable code, a message safe to
// show, and the request id. Never internals, never request data.
func writeJSONError(fctx *fasthttp.RequestCtx, status int, code, msg string, reqID []byte) {
	fctx.SetStatusCode(status)
	addDate(&fctx.Response.Header)
	fctx.Response.Header.SetContentType("application/json")
	fctx.Response.Header.Set(fiber.HeaderCacheControl, "no-store")
	b := fctx.Response.Body()[:0]
	b = append(b, `{"error":`...)
	b = strconv.AppendQuote(b, code)
	b = append(b, `,"message":`...)
	b = strconv.AppendQuote(b, msg)
	if len(reqID) > 0 {
		b = append(b, `,"request_id":`...)
		b = strconv.AppendQuote(b, b2s(reqID))
		fctx.Response.Header.SetBytesV(headerRequestID, reqID)
	}
	b = append(b, "}\n"...)
	fctx.Response.SetBodyRaw(b)
}

// ErrorHandler is the Fiber error handler: it answers errors fasthttp
// raises before the proxy runs (431 header too large, 408 slow headers, 413
// body too large, 400 unparsable request) with the same JSON shape,
// counted by reason. fasthttp closes the connection after it.
func (p *Proxy) ErrorHandler(c *fiber.Ctx, err error) error {
	status, code, msg := 500, "internal_error", "internal error"
	var fe *fiber.Error
	if errors.As(err, &fe) {
		status, msg = fe.Code, statusText(fe.Code)
	}
	switch status {
	case 431:
		code = "header_too_large"
	case 408:
		code = "client_timeout"
	case 413:
		code = "body_too_large"
	case 400:
		code = "bad_request"
	default:
		if fe != nil {
			code = "error"
		}
	}
	p.metrics.Rejected.WithLabelValues(code).Inc()
	fctx := c.Context()
	fctx.Response.Reset()
	writeJSONError(fctx, status, code, msg, nil)
	return nil
}
