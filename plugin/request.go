package plugin

import "github.com/gofiber/fiber/v2"

// Request is what a plugin may learn about, and change in, the request
// being served. The proxy implements it; plugins reach it with From. Values
// passed in must stay valid until the request ends (use constants or
// strings the plugin owns).
type Request interface {
	// RouteID is the id of the route serving the request ("default" for
	// the catch-all).
	RouteID() string
	// RequestID is the request's X-Request-Id.
	RequestID() string
	// SetUpstreamHeader sets a header on the request sent upstream, after
	// the gateway has stripped what the client must not control, so a
	// client cannot remove it through Connection.
	SetUpstreamHeader(name, value string)
	// RemoveUpstreamHeader removes a header from the request sent
	// upstream.
	RemoveUpstreamHeader(name string)
	// SetIdentity records the verified subject of the request (an auth
	// plugin calls it): it is the canary key source "identity" and what
	// the legacy adapter presents to legacy.
	SetIdentity(subject string)
	// Identity returns the subject SetIdentity recorded, or "".
	Identity() string
	// LegacyOnly says the request may be served by the legacy side only
	// (a user logged in the old way, without a token): a canary keeps it
	// on legacy, and when the route's side is new (in routes.yaml or by an
	// on-call override) it is answered with deny instead. The decision is
	// made on the side the request actually goes to, after overrides and
	// canary, never on the route's configured side.
	LegacyOnly(deny error)
	// UpstreamBody returns the upstream response body for an
	// UpstreamPlugin's Inbound when it is at most max bytes (ok false
	// otherwise: the body, read or not, still reaches the client whole).
	// The body is read from the stream at most once per response.
	UpstreamBody(max int) (body []byte, ok bool)
}

// LocalsKey is the fiber.Ctx Locals key under which the proxy stores the
// Request.
const LocalsKey = "strangler.request"

// From returns the request being served, or a Request that does nothing
// outside the proxy (a plugin under a bare fiber.App in a unit test sees
// its calls ignored rather than panicking).
func From(c *fiber.Ctx) Request {
	if r, ok := c.Locals(LocalsKey).(Request); ok {
		return r
	}
	return none{}
}

type none struct{}

func (none) RouteID() string                         { return "" }
func (none) RequestID() string                       { return "" }
func (none) SetUpstreamHeader(string, string)        {}
func (none) RemoveUpstreamHeader(string)             {}
func (none) SetIdentity(string)                      {}
func (none) Identity() string                        { return "" }
func (none) LegacyOnly(error)                        {}
func (none) UpstreamBody(int) (body []byte, ok bool) { return nil, false }
