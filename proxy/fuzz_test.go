package proxy

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzHopHeaders: scanHeaders never panics on any header block, and what it
// accepts has only clean header names and values.
func FuzzHopHeaders(f *testing.F) {
	for _, s := range []string{
		"Host: example.com\r\n\r\n",
		"Host: example.com\r\nContent-Length: 5\r\n\r\n",
		"Host: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"Host: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"Host: a\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\n\r\n",
		"Host: a\r\nConnection: keep-alive, Content-Length\r\n\r\n",
		"Host: a\r\nConnection:\r\nConnection: x\r\n\r\n",
		"Host: a\r\nTE: trailers\r\n\r\n",
		"Host: a\r\nX_User_Id: 1\r\n\r\n",
		"Host: a\r\nX-Strangler-Route: admin\r\n\r\n",
		"Host: a\r\nExpect: 100-continue\r\n\r\n",
		"Host: a\r\nExpect: nope\r\n\r\n",
		"Host: a\r\n folded\r\n\r\n",
		"Host: a\nX: b\n\n",
		"Host : a\r\n\r\n",
		": empty\r\n\r\n",
		"Host: a\r\nX: a\x00b\r\n\r\n",
		"Host: [::1]:8080\r\n\r\n",
		"Host: a@b\r\n\r\n",
		"Host: a\r\nContent-Length: +5\r\n\r\n",
		"Host: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"Host: a\r\nX\rY: z\r\n\r\n",
		"Host: a\r\n\r\nbody: not a header\r\n",
	} {
		f.Add([]byte(s), uint8(100))
	}
	f.Add([]byte(strings.Repeat("X-A: 1\r\n", 20)+"\r\n"), uint8(10))
	f.Add([]byte("Connection: "+strings.Repeat("a, ", 20)+"\r\n\r\n"), uint8(100))
	f.Fuzz(func(t *testing.T, raw []byte, maxCount uint8) {
		var facts reqFacts
		input := bytes.Clone(raw)
		err := scanHeaders(raw, int(maxCount), &facts)
		if !bytes.Equal(raw, input) {
			t.Fatalf("scanHeaders modified its input")
		}
		if err != nil {
			if err.Status != 400 && err.Status != 417 && err.Status != 431 {
				t.Fatalf("unexpected status %d (%s)", err.Status, err.Code)
			}
			return
		}
		if facts.ndel > maxNominated {
			t.Fatalf("ndel = %d > %d", facts.ndel, maxNominated)
		}
		for _, name := range facts.del[:facts.ndel] {
			if len(name) == 0 || bytes.ContainsAny(name, " \t\r\n\x00:") {
				t.Fatalf("accepted nominated header name %q", name)
			}
		}
		// Re-read the block the way an upstream would and check every
		// header that was accepted.
		count := 0
		for _, line := range bytes.Split(raw, []byte("\n")) {
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(line) == 0 {
				break
			}
			count++
			name, value, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				t.Fatalf("accepted a header line without a colon: %q", line)
			}
			if len(name) == 0 || bytes.ContainsAny(name, " \t\r\n\x00") {
				t.Fatalf("accepted header name %q", name)
			}
			if bytes.ContainsAny(value, "\r\n\x00") {
				t.Fatalf("accepted header value %q", value)
			}
		}
		if count > int(maxCount) {
			t.Fatalf("accepted %d headers with a limit of %d", count, maxCount)
		}
	})
}
