package shadow

import (
	"bytes"
	"errors"
	"mime"
	"strconv"
	"strings"
	"unicode/utf8"
)

// errTooLarge: a body above the cap once its Content-Encoding is decoded.
var errTooLarge = errors.New("body too large")

// Compare compares two observations: the status, the experiment's headers
// (each as the ordered list of its values; Content-Type by media type) and
// the body once its Content-Encoding is decoded: JSON structurally, other
// text line by line after normalisation, anything else by digest and
// length. The whole response is compared; beyond the budget of
// differences (JSON.Max) the result is marked truncated. errTooLarge
// means a decoded body exceeds MaxBody: no comparison.
func (x *Experiment) Compare(a, b *Observation) (Comparison, error) {
	s := &sink{max: x.JSON.Max}
	if a.Status != b.Status {
		s.add("status", func() Diff {
			return Diff{Path: "status", Control: strconv.Itoa(a.Status), Candidate: strconv.Itoa(b.Status)}
		})
	}
	for _, h := range x.Headers {
		av, bv := a.Header[h], b.Header[h]
		if h == "Content-Type" {
			// Compared by media type: "application/json; charset=utf-8"
			// and "application/json" agree; shown whatever Values says.
			av, bv = mediaTypes(av), mediaTypes(bv)
			if !slicesEqual(av, bv) {
				s.add("header:"+h, func() Diff {
					return Diff{Path: "header:" + h, Control: headerText(av), Candidate: headerText(bv)}
				})
			}
			continue
		}
		if !slicesEqual(av, bv) {
			s.add("header:"+h, func() Diff {
				return Diff{Path: "header:" + h, Control: x.headerValues(av), Candidate: x.headerValues(bv)}
			})
		}
	}
	ab, aerr := decodeBody(a.Body, a.Encoding, x.MaxBody)
	bb, berr := decodeBody(b.Body, b.Encoding, x.MaxBody)
	if errors.Is(aerr, errTooLarge) || errors.Is(berr, errTooLarge) {
		return Comparison{}, errTooLarge
	}
	if aerr != nil || berr != nil {
		// A body a client could not decode is a difference in itself.
		ad, bd := digest(a.Body), digest(b.Body)
		if aerr != nil {
			ad = aerr.Error() + ", " + ad
		}
		if berr != nil {
			bd = berr.Error() + ", " + bd
		}
		s.add("body", func() Diff { return Diff{Path: "body", Control: ad, Candidate: bd} })
		return s.cmp, nil
	}
	if bytes.Equal(ab, bb) {
		// Equal bytes hold no difference whatever their type: the usual
		// answer of a shadow phase costs no JSON decoding (issue 15).
		return s.cmp, nil
	}
	switch {
	case isJSON(a.ContentType) && isJSON(b.ContentType):
		av, aok := decodeJSON(ab)
		bv, bok := decodeJSON(bb)
		if aok && bok {
			x.JSON.compare(av, bv, s)
			return s.cmp, nil
		}
		fallthrough
	case isText(a.ContentType, ab) && isText(b.ContentType, bb):
		compareText(ab, bb, &x.JSON, s)
	default:
		if !bytes.Equal(ab, bb) {
			s.add("body", func() Diff { return Diff{Path: "body", Control: digest(ab), Candidate: digest(bb)} })
		}
	}
	return s.cmp, nil
}

// headerValues renders a header's values as Values says.
func (x *Experiment) headerValues(v []string) string {
	if len(v) == 0 {
		return "(absent)"
	}
	if !x.JSON.Values.Store {
		parts := make([]string, len(v))
		for i, s := range v {
			parts[i] = describeText(s)
		}
		return strconv.Itoa(len(v)) + " value(s): " + strings.Join(parts, "; ")
	}
	return cut(headerText(v), valueCap)
}

// headerText shows one value as it is and several as a list, in order.
func headerText(v []string) string {
	switch len(v) {
	case 0:
		return "(absent)"
	case 1:
		return v[0]
	}
	return encodeJSON(v)
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mediaTypes(v []string) []string {
	if len(v) == 0 {
		return nil
	}
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = mediaType(s)
	}
	return out
}

func mediaType(v string) string {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(v))
	}
	return mt
}

func isJSON(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// isText reports whether a body is text: a text/*, XML, JavaScript, form
// or JSON media type, or none at all with valid UTF-8 and no NUL.
func isText(ct string, body []byte) bool {
	mt := mediaType(ct)
	switch {
	case strings.HasPrefix(mt, "text/"), strings.HasSuffix(mt, "+xml"), strings.HasSuffix(mt, "+json"),
		mt == "application/json", mt == "application/xml", mt == "application/javascript",
		mt == "application/x-www-form-urlencoded", mt == "application/x-ndjson":
		return true
	case mt == "":
		return utf8.Valid(body) && bytes.IndexByte(body, 0) < 0
	}
	return false
}
