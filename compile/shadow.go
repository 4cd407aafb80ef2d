package compile

import (
	"errors"
	"fmt"
	"net/textproto"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"time"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/shadow"
)

const (
	defaultShadowMaxBody  = 64 << 10
	defaultShadowTimeout  = 5 * time.Second
	defaultShadowFileMax  = 64 << 20
	defaultShadowMaxDiffs = 100
)

// defaultShadowHeaders are compared on every shadowed route unless its
// default_headers is false: what a client acts on besides the body.
var defaultShadowHeaders = []string{"Content-Type", "Location", "Link"}

// compileShadowSettings turns the top-level shadow section into engine
// options.
func (c *compiler) compileShadowSettings(s config.ShadowSettings) shadow.Options {
	o := shadow.Options{Workers: s.Workers, Queue: s.Queue, Recent: s.Recent, File: s.File}
	for _, f := range []struct {
		name string
		v    int
	}{{"workers", s.Workers}, {"queue", s.Queue}, {"recent", s.Recent}} {
		if f.v < 0 {
			c.errorf("shadow."+f.name, "must be positive")
		}
	}
	o.FileMaxBytes = c.ix.Size("shadow.file_max_bytes", s.FileMaxBytes, defaultShadowFileMax, false)
	return o
}

// compileShadow compiles a route's shadow section: its sampling (on the
// route's canary cohort unless it names its own keys) and its experiment.
func (c *compiler) compileShadow(path string, ss *config.ShadowSpec, r *routing.Route) *routing.Shadow {
	sp := path + ".shadow"
	sh := &routing.Shadow{Methods: routing.Safe, Sample: routing.Canary{Keys: c.defaults}}
	if r.Canary != nil {
		sh.Sample.Keys, sh.Sample.Salt = r.Canary.Keys, r.Canary.Salt
	}
	if r.New == nil {
		c.errorf(sp, "a shadow compares the route's two sides: add a new: section")
	}
	sh.Sample.BasisPoints, _ = c.basisPoints(sp+".percent", ss.Percent)
	if ss.Noise != nil {
		if bp, err := routing.PercentToBasisPoints(*ss.Noise); err != nil {
			c.errorf(sp+".noise", "bad percentage %v: %v", *ss.Noise, err)
		} else {
			sh.NoiseBasisPoints = bp
		}
	}
	if len(ss.Key) > 0 {
		sh.Sample.Keys = c.keySources(sp+".key", ss.Key, c.defaults)
	}
	if ss.Methods != nil {
		sh.Methods = 0
		for i, m := range ss.Methods {
			mp := fmt.Sprintf("%s.methods[%d]", sp, i)
			bit, ok := routing.MethodNamed(m)
			if !ok {
				c.errorf(mp, "unknown method %q", m)
				continue
			}
			sh.Methods |= bit
			if bit&routing.Safe == 0 {
				if !ss.AllowWrites {
					c.errorf(mp, "shadowing %s runs the write on both sides: set allow_writes: true if the other side treats X-Strangler-Shadow: 1 as a dry run", m)
				} else {
					c.ix.Warnf(mp, "%s is shadowed: the write runs on both sides (the shadow request carries X-Strangler-Shadow: 1)", m)
				}
			}
		}
	}
	x := &shadow.Experiment{Route: r.ID}
	if r.Pattern != nil {
		x.Template = shapeTemplate(r.Pattern)
	}
	x.MaxBody = c.ix.Size(sp+".max_body_bytes", ss.MaxBodyBytes, defaultShadowMaxBody, false)
	x.Timeout = c.ix.Duration(sp+".timeout", ss.Timeout, defaultShadowTimeout, false)
	if ss.DefaultHeaders == nil || *ss.DefaultHeaders {
		x.Headers = slices.Clone(defaultShadowHeaders)
	}
	for i, h := range ss.Headers {
		if !headerNameOK(h) {
			c.errorf(fmt.Sprintf("%s.headers[%d]", sp, i), "bad header name %q", h)
			continue
		}
		if canon := textproto.CanonicalMIMEHeaderKey(h); !slices.Contains(x.Headers, canon) {
			x.Headers = append(x.Headers, canon)
		}
	}
	for i, p := range ss.Ignore {
		ip := fmt.Sprintf("%s.ignore[%d]", sp, i)
		if name, ok := strings.CutPrefix(p, "header:"); ok {
			canon := textproto.CanonicalMIMEHeaderKey(name)
			x.Headers = slices.DeleteFunc(x.Headers, func(h string) bool { return h == canon })
			continue
		}
		jp, err := shadow.ParseJSONPath(p)
		if err != nil {
			c.errorf(ip, "bad JSON path %q: %v (or header:NAME)", p, err)
			continue
		}
		x.JSON.Ignore = append(x.JSON.Ignore, jp)
	}
	for i, p := range ss.Unordered {
		jp, err := shadow.ParseJSONPath(p)
		if err != nil {
			c.errorf(fmt.Sprintf("%s.unordered[%d]", sp, i), "bad JSON path %q: %v", p, err)
			continue
		}
		x.JSON.Unordered = append(x.JSON.Unordered, jp)
	}
	for i, n := range ss.Normalize {
		np := fmt.Sprintf("%s.normalize[%d]", sp, i)
		if n.Regex == "" {
			c.errorf(np+".regex", "missing regex: what to replace")
			continue
		}
		re, err := regexp.Compile(n.Regex)
		if err != nil {
			var se *syntax.Error
			if errors.As(err, &se) {
				err = fmt.Errorf("%s: `%s`", se.Code, se.Expr)
			}
			c.errorf(np+".regex", "bad regex %q: %v", n.Regex, err)
			continue
		}
		x.JSON.Normalize = append(x.JSON.Normalize, shadow.Normalizer{Regex: re, Replace: n.Replace})
	}
	x.JSON.Values.Store = ss.StoreValues
	for i, e := range ss.Redact {
		ep := fmt.Sprintf("%s.redact[%d]", sp, i)
		switch {
		case strings.HasPrefix(e, "query:") && len(e) > len("query:"):
			x.RedactQueries = append(x.RedactQueries, strings.ToLower(e[len("query:"):]))
		case strings.HasPrefix(e, "header:") && headerNameOK(e[len("header:"):]):
			x.RedactHeaders = append(x.RedactHeaders, textproto.CanonicalMIMEHeaderKey(e[len("header:"):]))
		case strings.HasPrefix(e, "$"):
			jp, err := shadow.ParseJSONPath(e)
			if err != nil {
				c.errorf(ep, "bad JSON path %q: %v", e, err)
				continue
			}
			x.JSON.Values.Redact = append(x.JSON.Values.Redact, jp)
		default:
			c.errorf(ep, "bad entry %q: use query:NAME, header:NAME or a JSON path like $.user.email", e)
		}
	}
	x.JSON.Max = c.ix.Positive(sp+".max_diffs", ss.MaxDiffs, defaultShadowMaxDiffs)
	x.Ready = shadow.DefaultReadiness
	if rs := ss.Ready; rs != nil {
		if rs.MatchRate != nil {
			if bp, ok := c.basisPoints(sp+".ready.match_rate", rs.MatchRate); ok && bp == 0 {
				c.errorf(sp+".ready.match_rate", "must be above 0: at 0 every route would be ready")
			} else if ok {
				x.Ready.MinMatchRate = float64(bp) / 100
			}
		}
		x.Ready.MinRequests = int64(c.ix.Positive(sp+".ready.min_requests", rs.MinRequests, int(shadow.DefaultReadiness.MinRequests)))
		x.Ready.MinShapes = c.ix.Positive(sp+".ready.min_shapes", rs.MinShapes, shadow.DefaultReadiness.MinShapes)
	}
	sh.Experiment = x
	return sh
}

// shapeTemplate is a route's pattern as a request shape shows it:
// "/api/courses/{id}", or "/static/*" for a prefix.
func shapeTemplate(p *routing.Pattern) string {
	s := p.String()
	if t, ok := strings.CutPrefix(s, "prefix "); ok {
		return strings.TrimSuffix(t, "/") + "/*"
	}
	return strings.TrimPrefix(s, "path ")
}

// headerNameOK reports whether h is a header name (RFC 9110 §5.1 token).
func headerNameOK(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}
