package upstream

import (
	"errors"
	"net"
	"os"
	"syscall"

	"github.com/valyala/fasthttp"
)

// Kind says what went wrong with a call to an upstream. Retry, fallback,
// breakers, metrics and the error writer all read it from the one Error a
// call returns, never from strings or loose flags.
type Kind uint8

const (
	// KindConnectRefused: the connection was refused or could not be
	// made. Nothing was sent. 502.
	KindConnectRefused Kind = iota + 1
	// KindConnectTimeout: connecting took longer than timeouts.connect.
	// Nothing was sent. 504.
	KindConnectTimeout
	// KindSaturated: every pooled connection stayed busy for
	// pool.wait_timeout. Nothing was sent. 503.
	KindSaturated
	// KindTimeout: the request was sent and the answer did not come in
	// time. 504.
	KindTimeout
	// KindReset: the connection was reset or closed after the request
	// was (perhaps) sent. 502.
	KindReset
	// KindProtocol: the upstream's answer could not be parsed. 502.
	KindProtocol
	// KindBody: the response body failed while it streamed; the client
	// already has the headers, so it sees a cut body.
	KindBody
	// KindBreakerOpen: the breaker refused the call. Nothing was sent.
	// 503 with X-Strangler-Breaker: open and Retry-After.
	KindBreakerOpen
	// KindOverloaded: a bulkhead (the route's or the upstream's) was
	// full. Nothing was sent. 503 with Retry-After.
	KindOverloaded
	// KindNoInstance: the upstream has no instance to call. 503.
	KindNoInstance
)

var kindNames = [...]string{
	KindConnectRefused: "connect_refused",
	KindConnectTimeout: "connect_timeout",
	KindSaturated:      "saturated",
	KindTimeout:        "timeout",
	KindReset:          "reset",
	KindProtocol:       "protocol",
	KindBody:           "body",
	KindBreakerOpen:    "breaker_open",
	KindOverloaded:     "overloaded",
	KindNoInstance:     "no_instance",
}

// String is the kind's name in metrics, logs and X-Strangler-Fallback.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// Sent reports whether a call that failed this way may have reached the
// upstream: then only requests safe to repeat may be sent again.
func (k Kind) Sent() bool {
	switch k {
	case KindTimeout, KindReset, KindProtocol, KindBody:
		return true
	}
	return false
}

// Status is the status the client gets, and Code the stable error code of
// its JSON body.
func (k Kind) Status() (status int, code, msg string) {
	switch k {
	case KindConnectTimeout, KindTimeout:
		return 504, "upstream_timeout", "the service did not answer in time"
	case KindBreakerOpen:
		return 503, "breaker_open", "the service is unavailable"
	case KindOverloaded:
		return 503, "overloaded", "too many requests in progress; retry later"
	case KindNoInstance, KindSaturated:
		return 503, "upstream_unavailable", "the service is unavailable"
	}
	return 502, "bad_gateway", "the service could not be reached"
}

// Error is a failed call to an upstream.
type Error struct {
	Kind Kind
	// Upstream names the upstream called.
	Upstream string
	// RetryAfter is the seconds a client should wait (a 503's
	// Retry-After); 0: the default of 1.
	RetryAfter int
	// Err is the underlying error, for logs; nil for refusals the gateway
	// made itself (breaker, bulkhead).
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Upstream + ": " + e.Kind.String() + ": " + e.Err.Error()
	}
	return e.Upstream + ": " + e.Kind.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of an *Error in err's chain, or 0.
func KindOf(err error) Kind {
	var ue *Error
	if errors.As(err, &ue) {
		return ue.Kind
	}
	return 0
}

// Classify turns a client library error into a Kind.
func Classify(err error) Kind {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return KindSaturated
	case errors.Is(err, fasthttp.ErrDialTimeout):
		return KindConnectTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindConnectRefused
	case isDialError(err):
		if errors.As(err, &ne) && ne.Timeout() {
			return KindConnectTimeout
		}
		return KindConnectRefused
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		return KindTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return KindReset
	}
	return KindProtocol
}

func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}
