package routing

import (
	"errors"
	"fmt"
	"strings"

	"github.com/strangler/strangler/internal/ascii"
)

// Canary sends a percentage of a legacy route's clients to the new side. The
// cohort is sticky: a client's bucket is FNV-1a-64(salt, 0x00, key) mod
// 10000, so the same key always lands in the same bucket, across restarts and
// replicas, and raising the percentage only adds clients to the new side.
type Canary struct {
	// BasisPoints is the share sent to new, 0..10000 (100 = 1%).
	BasisPoints uint32
	// Keys are the cohort key sources in order; the first present wins.
	Keys []KeySource
	// Salt changes the cohort.
	Salt string
}

// Percent returns the canary's share as a percentage.
func (c *Canary) Percent() float64 { return float64(c.BasisPoints) / 100 }

// KeySource is where a cohort key comes from.
type KeySource struct {
	Kind string // "header", "cookie", "query", "ip" or "identity"
	Name string
}

func (k KeySource) String() string {
	if k.Kind == "ip" || k.Kind == "identity" {
		return k.Kind
	}
	return k.Kind + ":" + k.Name
}

// ParseKeySource reads a cohort key source: header:NAME, cookie:NAME,
// query:NAME, identity or ip.
func ParseKeySource(s string) (KeySource, error) {
	if s == "ip" || s == "identity" {
		return KeySource{Kind: s}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return KeySource{}, fmt.Errorf("bad key %q: use header:NAME, cookie:NAME, query:NAME, identity or ip", s)
	}
	switch kind {
	case "header", "cookie", "query":
	default:
		return KeySource{}, fmt.Errorf("bad key %q: unknown source %q (use header, cookie, query, identity or ip)", s, kind)
	}
	for i := 0; i < len(name); i++ {
		if !ascii.Tchar[name[i]] {
			return KeySource{}, fmt.Errorf("bad key %q: %q is not a valid name", s, name)
		}
	}
	return KeySource{Kind: kind, Name: name}, nil
}

var errPercent = errors.New("must be a number from 0 to 100 with at most two decimals")

// PercentToBasisPoints converts a percentage with at most two decimals to
// basis points: 12.5 is 1250.
func PercentToBasisPoints(p float64) (uint32, error) {
	if p < 0 || p > 100 || p != p {
		return 0, errPercent
	}
	bp := p * 100
	r := float64(int64(bp + 0.5))
	if d := bp - r; d > 1e-6 || d < -1e-6 {
		return 0, errPercent
	}
	return uint32(r), nil
}

// KeyReader reads cohort key sources from a request.
type KeyReader interface {
	Header(name string) []byte
	Cookie(name string) []byte
	Query(name string) []byte
	ClientIP() []byte
	// Identity is the verified subject an auth plugin set, or nil.
	Identity() []byte
}

// CohortKey returns the first present key and the source it came from; the
// client IP when none is present.
func (c *Canary) CohortKey(r KeyReader) ([]byte, KeySource) {
	for _, k := range c.Keys {
		var v []byte
		switch k.Kind {
		case "header":
			v = r.Header(k.Name)
		case "cookie":
			v = r.Cookie(k.Name)
		case "query":
			v = r.Query(k.Name)
		case "ip":
			v = r.ClientIP()
		case "identity":
			v = r.Identity()
		}
		if len(v) > 0 {
			return v, k
		}
	}
	return r.ClientIP(), KeySource{Kind: "ip"}
}

// Bucket returns the key's cohort bucket, 0..9999.
func (c *Canary) Bucket(key []byte) uint32 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(c.Salt); i++ {
		h ^= uint64(c.Salt[i])
		h *= prime
	}
	h ^= 0
	h *= prime
	for _, b := range key {
		h ^= uint64(b)
		h *= prime
	}
	// FNV's low bits mix poorly; fold the high half in before the modulo.
	h ^= h >> 32
	return uint32(h % 10000)
}

// Choose returns the side a request with this key goes to.
func (c *Canary) Choose(key []byte) Side {
	if c.BasisPoints == 0 {
		return SideLegacy
	}
	if c.Bucket(key) < c.BasisPoints {
		return SideNew
	}
	return SideLegacy
}
