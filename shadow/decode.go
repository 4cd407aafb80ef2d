package shadow

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"strings"

	brotli "github.com/molecule-man/go-brrr"
)

// decodeBody undoes a Content-Encoding (gzip, deflate, br; a list is
// undone last first), so a gzip answer and the same answer uncompressed
// agree. The decoded body is capped at max: errTooLarge beyond it (a
// small compressed body can expand to gigabytes). An encoding it cannot
// undo is an error that names it.
func decodeBody(body []byte, encoding string, max int64) ([]byte, error) {
	encoding = strings.TrimSpace(encoding)
	if encoding == "" || strings.EqualFold(encoding, "identity") || len(body) == 0 {
		return body, nil
	}
	codings := strings.Split(encoding, ",")
	for i := len(codings) - 1; i >= 0; i-- {
		c := strings.ToLower(strings.TrimSpace(codings[i]))
		var r io.Reader
		var err error
		switch c {
		case "identity", "":
			continue
		case "gzip", "x-gzip":
			r, err = gzip.NewReader(bytes.NewReader(body))
		case "deflate":
			// RFC 9110 §8.4.1.2: zlib-wrapped deflate; some servers send
			// it raw, which zlib's header check tells apart.
			r, err = zlib.NewReader(bytes.NewReader(body))
			if err != nil {
				r, err = flate.NewReader(bytes.NewReader(body)), nil
			}
		case "br":
			r = brotli.NewReader(bytes.NewReader(body))
		default:
			return nil, fmt.Errorf("content-encoding %q not decoded", c)
		}
		if err != nil {
			return nil, fmt.Errorf("bad %s body: %v", c, err)
		}
		out, err := io.ReadAll(io.LimitReader(r, max+1))
		if err != nil {
			return nil, fmt.Errorf("bad %s body: %v", c, err)
		}
		if int64(len(out)) > max {
			return nil, errTooLarge
		}
		body = out
	}
	return body, nil
}
