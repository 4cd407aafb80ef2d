package plugin

// RequestError is a rejection of a client request before any upstream is
// called: a status, a stable machine-readable code (also the reason label of
// strangler_rejected_requests_total) and a short message safe to show.
// Plugins return it from their handler; the proxy's error writer answers
// it, and a RequestError never counts against a breaker.
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
