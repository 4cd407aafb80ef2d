package routing

import (
	"time"

	"github.com/strangler/strangler/internal/ascii"
)

// Upgrade is a route's policy for requests that ask to switch protocols
// (Upgrade and Connection: upgrade, RFC 9110 §7.8), WebSocket above all.
// A route without one forwards such requests as ordinary requests, with
// Upgrade removed like every hop-by-hop header.
type Upgrade struct {
	// Protocols are the accepted protocol names, lower case; nil: any
	// but h2c.
	Protocols []string
	// Idle closes a joined connection after this long without a byte in
	// either direction; MaxDuration after this long in all (0: none).
	Idle, MaxDuration time.Duration
}

// Allows reports whether the route accepts an Upgrade header value (a
// comma-separated list of protocols, each "name" or "name/version"): every
// protocol listed must be accepted, and h2c never is (HTTP/2 cleartext
// through a tunnel would bypass every check the gateway makes).
func (u *Upgrade) Allows(value []byte) bool {
	if u == nil || len(value) == 0 {
		return false
	}
	ok, any := true, false
	ascii.ForEachToken(value, func(tok []byte) {
		any = true
		name := tok
		for i, c := range tok {
			if c == '/' {
				name = tok[:i]
				break
			}
		}
		if ascii.EqualFold(name, "h2c") || !ascii.IsToken(string(name)) {
			ok = false
			return
		}
		if u.Protocols == nil {
			return
		}
		for _, p := range u.Protocols {
			if ascii.EqualFold(name, p) {
				return
			}
		}
		ok = false
	})
	return ok && any
}
