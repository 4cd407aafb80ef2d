package gateway

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/store"
)

// compileServer applies the server section's defaults and parses its
// values.
func (c *compiler) compileServer(s *config.ServerSpec) *config.ServerSettings {
	sc := &config.ServerSettings{
		Listen:         s.Listen,
		OperatorListen: s.OperatorListen,
		ExposeRoute:    s.ExposeRoute,
		PublicHealth:   s.PublicHealth,
		AccessLog:      s.AccessLog,
	}
	sc.AdminTokensFile, sc.AdminReadAuth, sc.AdminStateFile = s.Admin.TokensFile, s.Admin.ReadRequiresToken, s.Admin.StateFile
	sc.AdminDataAuth = s.Admin.DataRequiresToken == nil || *s.Admin.DataRequiresToken
	if sc.AdminStateFile == "" {
		sc.AdminStateFile = defaultStateFile
	}
	sc.Store = "file"
	if s.Store != "" {
		if _, err := store.ParseURL(s.Store); err != nil {
			c.errorf("server.store", "%v", err)
		} else {
			sc.Store = s.Store
		}
	}
	sc.ReloadWatch = c.ix.Duration("server.reload.watch", s.Reload.Watch, defaultReloadWatch, true)
	if sc.Listen == "" {
		sc.Listen = defaultListen
	}
	if sc.OperatorListen == "" {
		sc.OperatorListen = defaultOperatorListen
	}
	if _, _, err := net.SplitHostPort(sc.Listen); err != nil {
		c.errorf("server.listen", "bad address %q: use host:port or :port", sc.Listen)
	}
	if _, _, err := net.SplitHostPort(sc.OperatorListen); err != nil {
		c.errorf("server.operator_listen", "bad address %q: use host:port", sc.OperatorListen)
	} else if sc.OperatorListen == sc.Listen {
		c.errorf("server.operator_listen", "must differ from server.listen: metrics and operator endpoints never share the public listener")
	}
	if sc.AccessLog == "" {
		sc.AccessLog = defaultAccessLog
	}
	for i, p := range s.TrustedProxies {
		path := fmt.Sprintf("server.trusted_proxies[%d]", i)
		pfx, err := parseNetPrefix(p)
		if err != nil {
			c.errorf(path, "%v", err)
			continue
		}
		sc.TrustedProxies = append(sc.TrustedProxies, pfx)
	}
	to := s.Timeouts
	sc.ReadHeaderTimeout = c.ix.Duration("server.timeouts.read_header", to.ReadHeader, defaultReadHeader, false)
	sc.ReadBodyTimeout = c.ix.Duration("server.timeouts.read_body", to.ReadBody, defaultReadBody, false)
	sc.WriteTimeout = c.ix.Duration("server.timeouts.write", to.Write, defaultWrite, false)
	sc.IdleTimeout = c.ix.Duration("server.timeouts.idle", to.Idle, defaultIdle, false)
	sc.ShutdownDelay = c.ix.Duration("server.timeouts.shutdown_delay", to.ShutdownDelay, defaultShutdownDelay, true)
	sc.DrainTimeout = c.ix.Duration("server.timeouts.drain", to.Drain, defaultDrain, true)

	l := s.Limits
	sc.MaxHeaderBytes = int(c.ix.Size("server.limits.max_header_bytes", l.MaxHeaderBytes, defaultMaxHeaderBytes, false))
	if sc.MaxHeaderBytes < 1024 {
		c.errorf("server.limits.max_header_bytes", "must be at least 1KiB")
		sc.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	sc.MaxURIBytes = int(c.ix.Size("server.limits.max_uri_bytes", l.MaxURIBytes, defaultMaxURIBytes, false))
	if sc.MaxURIBytes < 256 {
		c.errorf("server.limits.max_uri_bytes", "must be at least 256")
		sc.MaxURIBytes = defaultMaxURIBytes
	}
	sc.MaxHeaderCount = c.ix.Positive("server.limits.max_header_count", l.MaxHeaderCount, defaultMaxHeaderCount)
	sc.MaxBodyBytes = c.ix.Size("server.limits.max_body_bytes", l.MaxBodyBytes, defaultMaxBodyBytes, true)
	sc.MaxBufferedBytes = c.ix.Size("server.limits.max_buffered_bytes", l.MaxBufferedBytes, defaultMaxBufferedBytes, false)
	sc.MaxReplayBytes = c.ix.Size("server.limits.max_replay_bytes", l.MaxReplayBytes, defaultMaxReplayBytes, false)
	sc.MaxConnections = c.ix.Positive("server.limits.max_connections", l.MaxConnections, defaultMaxConnections)
	sc.MaxConnectionsPerIP = l.MaxConnectionsPerIP
	if sc.MaxConnectionsPerIP < 0 {
		c.errorf("server.limits.max_connections_per_ip", "must not be negative")
	}
	c.compileTLS(s, sc)
	return sc
}

func parseNetPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad IP or CIDR %q", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
