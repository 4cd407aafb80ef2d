package gateway

import (
	"fmt"
	"net/textproto"
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
	defaultShadowMaxDiffs = 50
)

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
	x.MaxBody = c.ix.Size(sp+".max_body_bytes", ss.MaxBodyBytes, defaultShadowMaxBody, false)
	x.Timeout = c.ix.Duration(sp+".timeout", ss.Timeout, defaultShadowTimeout, false)
	x.Headers = []string{"Content-Type"}
	if ss.Headers != nil {
		x.Headers = nil
		for _, h := range ss.Headers {
			x.Headers = append(x.Headers, textproto.CanonicalMIMEHeaderKey(h))
		}
	}
	for i, p := range ss.Ignore {
		ip := fmt.Sprintf("%s.ignore[%d]", sp, i)
		if name, ok := strings.CutPrefix(p, "header:"); ok {
			canon := textproto.CanonicalMIMEHeaderKey(name)
			kept := x.Headers[:0]
			for _, h := range x.Headers {
				if h != canon {
					kept = append(kept, h)
				}
			}
			x.Headers = kept
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
	x.JSON.Max = defaultShadowMaxDiffs
	sh.Experiment = x
	return sh
}
