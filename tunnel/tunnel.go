package tunnel

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// closeGoingAway is a WebSocket close frame (RFC 6455 §5.5.1), from the
// server side (unmasked): 1001 going away.
var closeGoingAway = append([]byte{0x88, 2 + byte(len("gateway shutting down")), 0x03, 0xe9}, "gateway shutting down"...)

// Config describes a tunnel to open: the switched upstream connection and
// what the client is to get first.
type Config struct {
	Route, Upstream, Target, RequestID string // for the metrics and the log line
	// WebSocket: the protocol switched to is WebSocket (a close frame on
	// shutdown, no half-close).
	WebSocket bool
	// Up is the upstream connection; UpR reads it (it may hold bytes the
	// upstream sent after its 101).
	Up  net.Conn
	UpR *bufio.Reader
	// Head is written to the client first: the 101.
	Head []byte
	// Idle ends the tunnel when no byte moved either way for that long;
	// MaxDuration (0: none) ends it however busy.
	Idle, MaxDuration time.Duration
	Metrics           *Metrics
	Log               *slog.Logger
}

// Tunnel is one joined pair of connections.
type Tunnel struct {
	cfg                  Config
	set                  *Set
	start                time.Time
	toClient, toUpstream prometheus.Counter
	open                 prometheus.Gauge

	last    atomic.Int64 // unix nanoseconds of the last byte either way
	drainBy atomic.Int64 // unix nanoseconds; 0: not draining
	started atomic.Bool
	ended   atomic.Bool
	reason  atomic.Pointer[string]
	cut     atomic.Bool // closed by a drain's time running out
	nUp     atomic.Int64
	nClient atomic.Int64

	mu       sync.Mutex
	client   net.Conn
	finished bool
}

// half is one direction of a tunnel.
type half struct {
	src, dst net.Conn
	r        io.Reader
	toClient bool
	frames   frameTracker
	// discard: a close frame was sent to the client on shutdown; what the
	// upstream still sends is read and dropped.
	discard bool
	n       *atomic.Int64
	bytes   prometheus.Counter
}

var copyBufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// Run is the client connection's handler (fasthttp's hijack handler):
// the 101, then both directions until the tunnel ends.
func (t *Tunnel) Run(cc net.Conn) {
	t.started.Store(true)
	t.mu.Lock()
	if t.finished {
		t.mu.Unlock()
		return
	}
	t.client = cc
	t.mu.Unlock()
	t.open.Inc()
	defer t.open.Dec()
	_ = cc.SetWriteDeadline(time.Now().Add(t.cfg.Idle))
	if _, err := cc.Write(t.cfg.Head); err != nil {
		t.finish("client")
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t.pipe(&half{src: cc, dst: t.cfg.Up, r: cc, n: &t.nUp, bytes: t.toUpstream})
	}()
	t.pipe(&half{src: t.cfg.Up, dst: cc, r: t.cfg.UpR, toClient: true, n: &t.nClient, bytes: t.toClient})
	wg.Wait()
	t.finish("error")
}

// AbandonUnlessStarted closes a tunnel whose Run never started (the
// client connection failed before it was handed over).
func (t *Tunnel) AbandonUnlessStarted() {
	if !t.started.Load() {
		t.finish("error")
	}
}

// deadline is when the tunnel must end if nothing else happens.
func (t *Tunnel) deadline() time.Time {
	d := time.Unix(0, t.last.Load()).Add(t.cfg.Idle)
	if t.cfg.MaxDuration > 0 {
		if m := t.start.Add(t.cfg.MaxDuration); m.Before(d) {
			d = m
		}
	}
	if by := t.drainBy.Load(); by != 0 {
		if b := time.Unix(0, by); b.Before(d) {
			d = b
		}
	}
	return d
}

// pipe copies one direction until it ends.
func (t *Tunnel) pipe(h *half) {
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	buf := *bufp
	peer := "upstream"
	if !h.toClient {
		peer = "client"
	}
	for {
		if t.ended.Load() {
			return
		}
		draining := t.drainBy.Load() != 0
		if draining {
			// Here, between two reads, the direction is at a frame
			// boundary if it ever is: the close frame goes now, not when
			// a read times out (a read that started after the drain
			// began waits for the drain's deadline).
			t.goingAway(h)
		}
		_ = h.src.SetReadDeadline(t.deadline())
		if t.ended.Load() {
			// end ran meanwhile: the deadline just set may have replaced
			// the past one it set (end marks ended before it sets it).
			return
		}
		if !draining && t.drainBy.Load() != 0 {
			continue // a drain started meanwhile: pick up its deadline
		}
		n, err := h.r.Read(buf)
		if n > 0 {
			t.last.Store(time.Now().UnixNano())
			if t.cfg.WebSocket && h.frames.feed(buf[:n]) {
				t.setReason(peer) // the first close frame says who closed
			}
			if !h.discard {
				_ = h.dst.SetWriteDeadline(time.Now().Add(t.cfg.Idle))
				if t.ended.Load() {
					return // as above: end's past deadline may just have been replaced
				}
				if _, werr := h.dst.Write(buf[:n]); werr != nil {
					t.end(peerOf(h.toClient)) // the side written to went away
					return
				}
				h.n.Add(int64(n))
				h.bytes.Add(float64(n))
			}
		}
		if draining {
			t.goingAway(h)
		}
		if err == nil {
			continue
		}
		if isTimeout(err) {
			if t.ended.Load() {
				return
			}
			now := time.Now()
			if by := t.drainBy.Load(); by != 0 {
				t.goingAway(h)
				if now.UnixNano() < by {
					continue
				}
				t.cutByDrain()
				return
			}
			if now.Before(t.deadline()) {
				continue // the other direction kept the tunnel alive
			}
			if t.cfg.MaxDuration > 0 && !now.Before(t.start.Add(t.cfg.MaxDuration)) {
				t.end("max_duration")
			} else {
				t.end("idle")
			}
			return
		}
		if t.ended.Load() {
			return
		}
		if errors.Is(err, io.EOF) {
			t.setReason(peer)
			// Pass a half-close on, and let the other direction go on;
			// except for a WebSocket, which has its own close handshake:
			// a TCP close there ends it (RFC 6455 §7.1.1).
			if !t.cfg.WebSocket {
				if cw, ok := closeWriter(h.dst); ok && cw.CloseWrite() == nil {
					return
				}
			}
			t.end(peer)
			return
		}
		t.end("error")
		return
	}
}

// goingAway sends the client a WebSocket close frame, between two frames,
// once a drain started (the direction to the client only).
func (t *Tunnel) goingAway(h *half) {
	if !h.toClient || !t.cfg.WebSocket || h.discard || !h.frames.atBoundary() {
		return
	}
	h.discard = true
	t.setReason("shutdown")
	_ = h.dst.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = h.dst.Write(closeGoingAway)
}

// cutByDrain ends a tunnel whose drain time ran out, counted once for
// Drain's answer.
func (t *Tunnel) cutByDrain() {
	if t.cut.CompareAndSwap(false, true) {
		t.set.cut.Add(1)
	}
	t.end("shutdown")
}

func peerOf(client bool) string {
	if client {
		return "client"
	}
	return "upstream"
}

func (t *Tunnel) setReason(r string) { t.reason.CompareAndSwap(nil, &r) }

// end stops both directions (their reads and writes fail at once).
func (t *Tunnel) end(reason string) {
	t.setReason(reason)
	if !t.ended.CompareAndSwap(false, true) {
		return
	}
	past := time.Unix(1, 0)
	_ = t.cfg.Up.SetDeadline(past)
	t.mu.Lock()
	if t.client != nil {
		_ = t.client.SetDeadline(past)
	}
	t.mu.Unlock()
}

// drain starts the shutdown of the tunnel: it must be over by by.
func (t *Tunnel) drain(by time.Time) {
	t.drainBy.CompareAndSwap(0, by.UnixNano())
	now := time.Now()
	_ = t.cfg.Up.SetReadDeadline(now)
	t.mu.Lock()
	if t.client != nil {
		_ = t.client.SetReadDeadline(now)
	}
	t.mu.Unlock()
}

// finish closes the upstream side, counts and logs the tunnel, once. The
// client connection is closed by fasthttp when Run returns.
func (t *Tunnel) finish(fallback string) {
	t.mu.Lock()
	if t.finished {
		t.mu.Unlock()
		return
	}
	t.finished = true
	t.mu.Unlock()
	t.ended.Store(true)
	_ = t.cfg.Up.Close()
	t.setReason(fallback)
	reason := *t.reason.Load()
	t.set.remove(t)
	c := &t.cfg
	c.Metrics.Closed.WithLabelValues(c.Route, reason).Inc()
	c.Log.Info("upgrade closed", "route", c.Route, "upstream", c.Upstream, "target", c.Target, "request_id", c.RequestID,
		"reason", reason, "duration", time.Since(t.start).Seconds(), "bytes_to_client", t.nClient.Load(), "bytes_to_upstream", t.nUp.Load())
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// closeWriter finds the half-close of a connection: fasthttp's hijacked
// connection hides it behind UnsafeConn.
func closeWriter(c net.Conn) (interface{ CloseWrite() error }, bool) {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		c = u.UnsafeConn()
	}
	cw, ok := c.(interface{ CloseWrite() error })
	return cw, ok
}

// Set is a proxy's open tunnels. Its zero value is ready.
type Set struct {
	mu sync.Mutex
	m  map[*Tunnel]struct{}
	// cut counts the tunnels a drain closed because its time ran out
	// (not by a close handshake or a peer's close).
	cut atomic.Int64
}

// Open adds a tunnel for cfg; the caller hands the client connection to
// its Run.
func (s *Set) Open(cfg Config) *Tunnel {
	t := &Tunnel{cfg: cfg, set: s, start: time.Now(),
		toClient: cfg.Metrics.Bytes.WithLabelValues(cfg.Route, "to_client"), toUpstream: cfg.Metrics.Bytes.WithLabelValues(cfg.Route, "to_upstream"),
		open: cfg.Metrics.Open.WithLabelValues(cfg.Route)}
	t.last.Store(t.start.UnixNano())
	s.mu.Lock()
	if s.m == nil {
		s.m = map[*Tunnel]struct{}{}
	}
	s.m[t] = struct{}{}
	s.mu.Unlock()
	return t
}

func (s *Set) remove(t *Tunnel) {
	s.mu.Lock()
	delete(s.m, t)
	s.mu.Unlock()
}

// Count returns the number of open tunnels.
func (s *Set) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *Set) list() []*Tunnel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Tunnel, 0, len(s.m))
	for t := range s.m {
		out = append(out, t)
	}
	return out
}

// Drain ends the tunnels for a shutdown: each WebSocket gets a close
// frame (1001) and the tunnels get until ctx's deadline to close; what is
// still open then is closed. It returns how many had to be closed that
// way.
func (s *Set) Drain(ctx context.Context) int {
	by, ok := ctx.Deadline()
	if !ok {
		by = time.Now().Add(30 * time.Second)
	}
	cut0 := s.cut.Load()
	for _, t := range s.list() {
		t.drain(by)
	}
	for s.Count() > 0 {
		select {
		case <-ctx.Done():
			for _, t := range s.list() {
				t.cutByDrain()
				if !t.started.Load() {
					t.finish("shutdown")
				}
			}
			for i := 0; i < 200 && s.Count() > 0; i++ {
				time.Sleep(5 * time.Millisecond)
			}
			return int(s.cut.Load() - cut0)
		case <-time.After(5 * time.Millisecond):
		}
	}
	// A tunnel may have closed itself at the deadline, just before ctx
	// said so: it was cut all the same.
	return int(s.cut.Load() - cut0)
}
