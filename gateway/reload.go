package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// upstreamFingerprint identifies an upstream's pool and breaker settings
// (its plugins are rebuilt on every load and do not count).
func upstreamFingerprint(us *UpstreamSpec, legacy bool) string {
	cp := *us
	cp.Plugins = nil
	b, _ := json.Marshal(struct {
		Spec   UpstreamSpec
		Legacy bool
	}{cp, legacy})
	return string(b)
}

func (c *compiler) previousUpstream(name, fp string) *Upstream {
	if c.opts.Previous == nil {
		return nil
	}
	if p := c.opts.Previous.Upstreams[name]; p != nil && p.fp == fp {
		return p
	}
	return nil
}

// ErrStopped is returned by Reload once the server is closed.
var ErrStopped = errors.New("the gateway is shutting down")

// Reload loads the routes file again and, when it is valid, swaps it in:
// requests in flight finish on the table they started with; upstreams whose
// settings did not change keep their pools and breakers; overrides are
// re-applied. A bad file changes nothing: its problems are logged and
// returned. Listener settings (addresses, timeouts, limits) are fixed for
// the life of the process.
func (rt *Router) Reload() (*Table, error) {
	rt.reloadMu.Lock()
	defer rt.reloadMu.Unlock()
	if rt.stopped {
		return nil, ErrStopped
	}
	old := rt.Table()
	opts := rt.LoadOptions()
	opts.Previous = old
	t, err := Load(rt.path, opts)
	if err != nil {
		rt.metrics.Reloads.WithLabelValues("error").Inc()
		var ces ConfigErrors
		if errors.As(err, &ces) {
			for _, ce := range ces {
				rt.log.Error("reload rejected", "problem", ce.Error())
			}
		} else {
			rt.log.Error("reload rejected", "err", err)
		}
		return nil, err
	}
	for _, w := range t.Warnings {
		rt.log.Warn("routes warning", "warning", w.Error())
	}
	if old != nil {
		t.Server.Listen, t.Server.OperatorListen = old.Server.Listen, old.Server.OperatorListen
		if listenerSettings(old.Server) != listenerSettings(t.Server) || old.Shadow != t.Shadow {
			rt.log.Warn("server listener, admin or shadow engine settings changed; they apply after a restart")
		}
	}
	rt.Swap(t)
	rt.metrics.Reloads.WithLabelValues("ok").Inc()
	rt.metrics.LastReload.SetToCurrentTime()
	rt.log.Info("routes reloaded", "file", t.File, "generation", rt.generation.Load(), "routes", len(t.Routes), "upstreams", len(t.Upstreams))
	if rt.overrides != nil {
		rt.overrides.reportOrphans(t)
	}
	if old != nil {
		// Closing drops the idle connections of pools the new table does
		// not keep and stops the old plugins' background work; requests
		// still on it finish.
		_ = old.CloseExcept(t)
	}
	return t, nil
}

// fileStamp is what the watcher compares: following symlinks, so a
// Kubernetes ConfigMap update (an atomic swap of the ..data symlink) shows
// as a new inode.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func stampOf(path string) (fileStamp, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, false
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st, true
}

// Watch reloads the routes file when it changes, polling every interval
// and waiting for it to be stable for one more interval (editors and
// ConfigMap updates write in steps). It stops when stop is closed.
func (rt *Router) Watch(interval time.Duration, stop <-chan struct{}) {
	last, _ := stampOf(rt.path)
	t := time.NewTicker(interval)
	defer t.Stop()
	var pending *fileStamp
	missing := false
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		cur, ok := stampOf(rt.path)
		if !ok {
			if !missing {
				rt.log.Warn("routes file cannot be read; the running table keeps serving", "file", rt.path)
				missing = true
			}
			pending = nil
			continue
		}
		missing = false
		if cur == last {
			pending = nil
			continue
		}
		if pending == nil || *pending != cur {
			pending = &cur // changed: wait until it holds still
			continue
		}
		rt.log.Info("routes file changed", "file", rt.path)
		if _, err := rt.Reload(); errors.Is(err, ErrStopped) {
			return
		}
		last, pending = cur, nil
	}
}

// listenerSettings are the server settings fixed at start.
func listenerSettings(s *ServerConfig) string {
	return fmt.Sprint(s.ReadHeaderTimeout, s.WriteTimeout, s.IdleTimeout, s.MaxHeaderBytes, s.MaxConnections,
		s.MaxConnectionsPerIP, s.AdminTokensFile, s.AdminReadAuth, s.AdminStateFile, s.ReloadWatch, s.AccessLog)
}
