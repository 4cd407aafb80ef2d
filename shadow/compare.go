package shadow

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"mime"
	"strconv"
	"strings"
)

// Compare compares two observations: the status, the experiment's headers
// and the body (JSON structurally, anything else byte for byte).
func (x *Experiment) Compare(a, b *Observation) []Diff {
	var out []Diff
	if a.Status != b.Status {
		out = append(out, Diff{Path: "status", Control: strconv.Itoa(a.Status), Candidate: strconv.Itoa(b.Status)})
	}
	for _, h := range x.Headers {
		av, bv := a.Header[h], b.Header[h]
		if strings.EqualFold(h, "Content-Type") {
			av, bv = mediaType(av), mediaType(bv)
		}
		if av != bv {
			out = append(out, Diff{Path: "header:" + h, Control: cut(av, 200), Candidate: cut(bv, 200)})
		}
	}
	if isJSON(a.ContentType) && isJSON(b.ContentType) {
		av, aok := decodeJSON(a.Body)
		bv, bok := decodeJSON(b.Body)
		if aok && bok {
			cmp := x.JSON
			return append(out, cmp.Compare(av, bv)...)
		}
	}
	if !bytes.Equal(a.Body, b.Body) {
		out = append(out, Diff{Path: "body", Control: digest(a.Body), Candidate: digest(b.Body)})
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

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:8]) + " (" + strconv.Itoa(len(b)) + " bytes)"
}
