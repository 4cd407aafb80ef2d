package hdr

import (
	"reflect"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// noDefaultDate is the offset of fasthttp.ResponseHeader's unexported
// noDefaultDate flag. fasthttp sets it only from Server.NoDefaultDate and
// copies it in ResponseHeader.CopyTo, so copying an upstream response
// turns the server's setting back off and replaces the upstream's Date
// with the gateway's (RFC 9110 §6.6.1 wants the origin's). There is no
// setter; the field is located by reflection once, and a fasthttp version
// without it fails at start (and in this package's test), never silently.
var noDefaultDate = func() uintptr {
	f, ok := reflect.TypeOf(fasthttp.ResponseHeader{}).FieldByName("noDefaultDate")
	if !ok || f.Type.Kind() != reflect.Bool || len(f.Index) != 1 {
		panic("internal/hdr: fasthttp.ResponseHeader has no noDefaultDate field; update KeepDate for this fasthttp version")
	}
	return f.Offset
}()

// KeepDate makes h written with its own Date header (the one copied from
// the upstream) and without the server's: fasthttp's ResponseHeader
// otherwise drops a Date it holds in favour of the current time.
func KeepDate(h *fasthttp.ResponseHeader) {
	*(*bool)(unsafe.Add(unsafe.Pointer(h), noDefaultDate)) = true
}
