package gateway

import (
	"errors"
	"strconv"
	"unsafe"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// writeError maps an error from a route's handler chain to the client
// response (httputil's ErrorHandler, oxy's utils.ErrorHandler): one place
// decides every status the gateway itself produces.
func (rt *Router) writeError(c *fiber.Ctx, st *reqState, err error) {
	status, code, msg := errorStatus(err)
	fctx := st.fctx
	// Whatever the upstream started to send is discarded (a plugin may fail
	// after the proxy set up a streamed body).
	if st.streaming {
		st.resp.detached = true
		st.streaming = false
	}
	fctx.Response.Reset()
	var re *RequestError
	isReject := errors.As(err, &re)
	if status == 413 || status == 408 || status == 400 {
		fctx.SetConnectionClose()
		isReject = true
	}
	if isReject {
		st.reason = code
		rt.metrics.Rejected.WithLabelValues(code).Inc()
	}
	writeJSONError(fctx, status, code, msg, st.reqID)
	if re != nil {
		for _, h := range re.Header {
			fctx.Response.Header.Set(h[0], h[1])
		}
	}
	if status == 503 {
		fctx.Response.Header.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(st.retryAfter, 1)))
	}
	if st.breakerOpen {
		fctx.Response.Header.Set("X-Strangler-Breaker", "open")
	}
	if st.table.Server.ExposeRoute && st.route != nil {
		fctx.Response.Header.Set("X-Strangler-Side", st.side.String())
		fctx.Response.Header.Set("X-Strangler-Route", st.route.ID)
	}
}

func errorStatus(err error) (status int, code, msg string) {
	var re *RequestError
	var fe *fiber.Error
	switch {
	case errors.As(err, &re):
		return re.Status, re.Code, re.Message
	case errors.Is(err, ErrBodyTooLarge):
		return 413, "body_too_large", "request body too large"
	case errors.Is(err, ErrClientTimeout):
		return 408, "client_timeout", "request body not received in time"
	case errors.Is(err, ErrClientBody):
		return 400, "bad_body", "malformed or truncated request body"
	case errors.Is(err, ErrUpstreamTimeout):
		return 504, "upstream_timeout", "the service did not answer in time"
	case errors.Is(err, ErrBreakerOpen):
		return 503, "breaker_open", "the service is unavailable"
	case errors.Is(err, ErrOverloaded):
		return 503, "overloaded", "too many requests in progress; retry later"
	case errors.Is(err, ErrNoHealthyInstance), errors.Is(err, ErrUpstreamSaturated):
		return 503, "upstream_unavailable", "the service is unavailable"
	case errors.Is(err, ErrUpstreamUnavailable):
		return 502, "bad_gateway", "the service could not be reached"
	case errors.As(err, &fe):
		return fe.Code, "error", statusText(fe.Code)
	}
	return 500, "internal_error", "internal error"
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
		fctx.Response.Header.SetBytesV(fiber.HeaderXRequestID, reqID)
	}
	b = append(b, "}\n"...)
	fctx.Response.SetBodyRaw(b)
}

// ErrorHandler is the Fiber error handler: it answers errors fasthttp
// raises before the router runs (431 header too large, 408 slow headers, 400
// unparsable request) with the same JSON shape, counted by reason. fasthttp
// closes the connection after it.
func (rt *Router) ErrorHandler(c *fiber.Ctx, err error) error {
	status, code, msg := errorStatus(err)
	switch status {
	case 431:
		code = "header_too_large"
	case 408:
		code = "client_timeout"
	case 413:
		code = "body_too_large"
	case 400:
		code = "bad_request"
	}
	rt.metrics.Rejected.WithLabelValues(code).Inc()
	fctx := c.Context()
	fctx.Response.Reset()
	writeJSONError(fctx, status, code, msg, nil)
	return nil
}

// b2s converts bytes to a string without copying; the string is valid only
// while the bytes are not modified.
func b2s(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
