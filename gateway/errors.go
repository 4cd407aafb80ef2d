package gateway

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ConfigError is one problem in a routes.yaml file, located by line, column
// and the path of the offending value, e.g.
//
//	routes.yaml:14:7: routes[2].new.upstream: unknown upstream "billing-v2" (known: billing, legacy)
type ConfigError struct {
	File      string
	Line, Col int
	Path      string
	Err       error
	// Warning marks a problem that does not stop the file from loading
	// (strangler validate prints it; serve logs it).
	Warning bool
}

func (e *ConfigError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Col, e.Err)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %v", e.File, e.Line, e.Col, e.Path, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// ConfigErrors is every problem found in one file, sorted by position. Its
// Error lists one problem per line.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each *ConfigError.
func (es ConfigErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func (es ConfigErrors) sorted() ConfigErrors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Col < es[j].Col
	})
	return es
}

// Request-time errors. writeError maps each to a status code; clients get a
// short JSON body with the request id and never the error's text.
var (
	// ErrNoHealthyInstance means the upstream has no instance to call: 503.
	ErrNoHealthyInstance = errors.New("no healthy upstream instance")
	// ErrUpstreamSaturated means every pooled connection stayed busy for
	// the pool's wait timeout: 503.
	ErrUpstreamSaturated = errors.New("upstream connection pool exhausted")
	// ErrUpstreamTimeout means the upstream did not answer in time: 504.
	ErrUpstreamTimeout = errors.New("upstream timed out")
	// ErrUpstreamUnavailable means the upstream refused, reset or broke the
	// connection, or sent a response that could not be parsed: 502.
	ErrUpstreamUnavailable = errors.New("upstream unavailable")
	// ErrOverloaded means a bulkhead (the route's or the upstream's
	// concurrency cap) was full: 503 with Retry-After, at once.
	ErrOverloaded = errors.New("too many concurrent requests")
	// ErrBodyTooLarge means the request body exceeds the route's limit: 413.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrClientBody means the client's request body could not be read
	// (bad chunked framing, early EOF): 400.
	ErrClientBody = errors.New("malformed or truncated request body")
	// ErrClientTimeout means the client stopped sending its body: 408.
	ErrClientTimeout = errors.New("client body read timed out")
)

// RequestError is a rejection of a client request before any upstream is
// called: a status, a stable machine-readable code (also the reason label of
// strangler_rejected_requests_total) and a short message safe to show.
type RequestError struct {
	Status  int
	Code    string
	Message string
	// Header is set on the error response (e.g. WWW-Authenticate).
	Header [][2]string
}

// NewRequestError is for plugins: a rejection with a status, a stable code
// and a message safe to show the client, plus optional response headers
// as name, value pairs.
func NewRequestError(status int, code, msg string, header ...string) *RequestError {
	e := &RequestError{Status: status, Code: code, Message: msg}
	for i := 0; i+1 < len(header); i += 2 {
		e.Header = append(e.Header, [2]string{header[i], header[i+1]})
	}
	return e
}

func (e *RequestError) Error() string { return e.Message }

func reject(status int, code, msg string) *RequestError {
	return &RequestError{Status: status, Code: code, Message: msg}
}
