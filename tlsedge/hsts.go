package tlsedge

import (
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/internal/hdr"
	"github.com/strangler/strangler/routing"
)

// HSTS adds Strict-Transport-Security to HTTPS responses for the
// configured hosts (never on plain HTTP: RFC 6797 §7.2). The gateway's
// policy replaces an upstream's.
func HSTS(rules []config.HSTSRule) fiber.Handler {
	return func(c *fiber.Ctx) error {
		err := c.Next()
		fctx := c.Context()
		if !fctx.IsTLS() {
			return err
		}
		if v := policyFor(rules, fctx.Request.Header.Host()); v != "" {
			hdr.SetResponse(&fctx.Response.Header, "Strict-Transport-Security", v)
		}
		return err
	}
}

// policyFor is the header value of the first rule naming host, in the
// form routes match hosts in (issue 13): "a.example.test." and
// "A.EXAMPLE.TEST:443" are a.example.test. "" when no rule does.
func policyFor(rules []config.HSTSRule, rawHost []byte) string {
	host := routing.CanonicalHost(rawHost)
	for _, r := range rules {
		for _, h := range r.Hosts {
			if hostMatch(h, host) {
				return r.Header
			}
		}
	}
	return ""
}

// hostMatch matches a lower-case host pattern ("a.b" or "*.b") against a
// request host, case-insensitively.
func hostMatch(pattern string, host []byte) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return len(host) > len(suffix) && strings.EqualFold(string(host[len(host)-len(suffix):]), suffix)
	}
	return strings.EqualFold(string(host), pattern)
}
