package proxy

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The gateway passes an upstream's Date on (RFC 9110 §6.6.1: the origin's
// clock, not the proxy's), so fasthttp's default Date is off
// (Server.NoDefaultDate) and the gateway adds its own only to the
// responses it makes, or when an upstream sent none. The value is
// formatted once a second.

type cachedDate struct {
	sec int64
	val []byte
}

var dateNow atomic.Pointer[cachedDate]

// httpDate returns the current time as an HTTP date.
func httpDate() []byte {
	now := time.Now()
	if d := dateNow.Load(); d != nil && d.sec == now.Unix() {
		return d.val
	}
	d := &cachedDate{sec: now.Unix(), val: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateNow.Store(d)
	return d.val
}

// addDate sets Date on a response the gateway made.
func addDate(h *fasthttp.ResponseHeader) {
	h.SetBytesV("Date", httpDate())
}
