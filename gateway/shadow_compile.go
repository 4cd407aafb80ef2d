package gateway

import (
	"fmt"
	"net/textproto"
	"strings"
	"time"
)

const (
	defaultShadowMaxBody = 64 << 10
	defaultShadowTimeout = 5 * time.Second
)

// compileShadowSettings turns the top-level shadow section into engine
// options.
func (c *compiler) compileShadowSettings(s ShadowSettings) ShadowOptions {
	o := ShadowOptions{Workers: s.Workers, Queue: s.Queue, Recent: s.Recent, File: s.File}
	for _, f := range []struct {
		name string
		v    int
	}{{"workers", s.Workers}, {"queue", s.Queue}, {"recent", s.Recent}} {
		if f.v < 0 {
			c.errorf("shadow."+f.name, "must be positive")
		}
	}
	o.FileMaxBytes = c.size("shadow.file_max_bytes", s.FileMaxBytes, 64<<20, false)
	return o
}

// compileShadow compiles a route's shadow section; defaultKeys are the
// route's canary keys (or the top-level ones).
func (c *compiler) compileShadow(path string, ss *ShadowSpec, r *Route, defaultKeys []KeySource) *ShadowConfig {
	sp := path + ".shadow"
	cfg := &ShadowConfig{methods: mGET | mHEAD | mOPTIONS, keys: defaultKeys}
	if r.Canary != nil {
		cfg.keys, cfg.salt = r.Canary.Keys, r.Canary.Salt
	}
	if r.New == nil {
		c.errorf(sp, "a shadow compares the route's two sides: add a new: section")
	}
	if ss.Percent == nil {
		c.errorf(sp+".percent", "missing percent (0 to 100)")
	} else if bp, err := percentToBasisPoints(*ss.Percent); err != nil {
		c.errorf(sp+".percent", "bad percentage %v: %v", *ss.Percent, err)
	} else {
		cfg.basisPoints = bp
	}
	if ss.Noise != nil {
		if bp, err := percentToBasisPoints(*ss.Noise); err != nil {
			c.errorf(sp+".noise", "bad percentage %v: %v", *ss.Noise, err)
		} else {
			cfg.noiseBP = bp
		}
	}
	if len(ss.Key) > 0 {
		cfg.keys = c.keySources(sp+".key", ss.Key, defaultKeys)
	}
	if ss.Methods != nil {
		cfg.methods = 0
		for i, m := range ss.Methods {
			mp := fmt.Sprintf("%s.methods[%d]", sp, i)
			bit, ok := methodBits[m]
			if !ok {
				c.errorf(mp, "unknown method %q", m)
				continue
			}
			cfg.methods |= bit
			if bit&(mGET|mHEAD|mOPTIONS) == 0 {
				if !ss.AllowWrites {
					c.errorf(mp, "shadowing %s runs the write on both sides: set allow_writes: true if the other side treats X-Strangler-Shadow: 1 as a dry run", m)
				} else {
					c.ix.warnf(mp, "%s is shadowed: the write runs on both sides (the shadow request carries X-Strangler-Shadow: 1)", m)
				}
			}
		}
	}
	cfg.maxBody = c.size(sp+".max_body_bytes", ss.MaxBodyBytes, defaultShadowMaxBody, false)
	cfg.timeout = c.duration(sp+".timeout", ss.Timeout, defaultShadowTimeout, false)
	cfg.headers = []string{"Content-Type"}
	if ss.Headers != nil {
		cfg.headers = nil
		for _, h := range ss.Headers {
			cfg.headers = append(cfg.headers, textproto.CanonicalMIMEHeaderKey(h))
		}
	}
	for i, p := range ss.Ignore {
		ip := fmt.Sprintf("%s.ignore[%d]", sp, i)
		if name, ok := strings.CutPrefix(p, "header:"); ok {
			canon := textproto.CanonicalMIMEHeaderKey(name)
			kept := cfg.headers[:0]
			for _, h := range cfg.headers {
				if h != canon {
					kept = append(kept, h)
				}
			}
			cfg.headers = kept
			continue
		}
		jp, err := parseJSONPattern(p)
		if err != nil {
			c.errorf(ip, "bad JSON path %q: %v (or header:NAME)", p, err)
			continue
		}
		cfg.cmp.ignore = append(cfg.cmp.ignore, jp)
	}
	for i, p := range ss.Unordered {
		jp, err := parseJSONPattern(p)
		if err != nil {
			c.errorf(fmt.Sprintf("%s.unordered[%d]", sp, i), "bad JSON path %q: %v", p, err)
			continue
		}
		cfg.cmp.unordered = append(cfg.cmp.unordered, jp)
	}
	cfg.cmp.max = 50
	return cfg
}
