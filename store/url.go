package store

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is a parsed store URL.
type Config struct {
	// Kind is "file" (the default: "" or "file") or "redis".
	Kind string
	// URL is the URL without its password, for logs and the admin API.
	URL string
	// Prefix starts every key and channel name (?prefix=, default
	// "strangler:"): fleets that share one Redis need their own.
	Prefix string
	// Resync is the period of the full resync that heals a missed
	// notification (?resync=, default 5s).
	Resync time.Duration

	single   *redis.Options
	failover *redis.FailoverOptions
}

// Defaults of a Redis store.
const (
	DefaultPrefix = "strangler:"
	DefaultResync = 5 * time.Second
)

// ParseURL reads a store URL: "" or "file" for the local file, or
// redis://[user:password@]host:port/db, rediss:// for TLS, and Redis
// Sentinel as redis://sentinel:26379/db?master_name=NAME (more sentinels
// with &addr=host:port). go-redis's own query options (dial_timeout,
// read_timeout, pool_size, skip_verify, ...) are accepted; strangler adds
// prefix and resync. Timeouts default to 1s rather than go-redis's 5s:
// the gateway would rather report the store down than wait.
func ParseURL(s string) (Config, error) {
	if s == "" || s == "file" {
		return Config{Kind: "file", URL: "file"}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return Config{}, fmt.Errorf("bad store URL: %v", redactErr(err, s))
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return Config{}, fmt.Errorf("bad store URL scheme %q: use redis://host:6379/0, rediss:// (TLS), or \"file\"", u.Scheme)
	}
	if u.Host == "" {
		return Config{}, errors.New("bad store URL: no host (redis://host:6379/0)")
	}
	c := Config{Kind: "redis", Prefix: DefaultPrefix, Resync: DefaultResync}
	q := u.Query()
	if p, ok := q["prefix"]; ok {
		c.Prefix = p[len(p)-1]
		q.Del("prefix")
	}
	if r := q.Get("resync"); r != "" {
		d, err := time.ParseDuration(r)
		if err != nil || d < 100*time.Millisecond {
			return Config{}, fmt.Errorf("bad store URL: resync=%q: a duration of at least 100ms, like 5s", r)
		}
		c.Resync = d
		q.Del("resync")
	}
	setDefault := func(k, v string) {
		if !q.Has(k) {
			q.Set(k, v)
		}
	}
	setDefault("dial_timeout", "1s")
	setDefault("read_timeout", "1s")
	setDefault("write_timeout", "1s")
	setDefault("max_retries", "1")
	u.RawQuery = q.Encode()
	if q.Has("master_name") {
		c.failover, err = redis.ParseFailoverURL(u.String())
	} else {
		c.single, err = redis.ParseURL(u.String())
	}
	if err != nil {
		return Config{}, fmt.Errorf("bad store URL: %v", redactErr(err, s))
	}
	u.RawQuery = ""
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	c.URL = u.Redacted()
	if c.failover != nil {
		c.URL += " (sentinel, master " + c.failover.MasterName + ")"
	}
	return c, nil
}

// redactErr keeps a password out of an error that quotes the URL.
func redactErr(err error, raw string) string {
	msg := err.Error()
	if u, perr := url.Parse(raw); perr == nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}
