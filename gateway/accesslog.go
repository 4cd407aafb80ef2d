package gateway

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// AccessLog writes one JSON line per request through log/slog; its Logger
// is nil when the access log is off. Lines are
// buffered (64 KiB, flushed every 200 ms and on Close), like nginx's
// "access_log ... buffer=64k flush=1s", so the log costs one write per batch
// instead of one per request. A failed write is counted in
// strangler_access_log_dropped_total and reported once on the main log.
type AccessLog struct {
	*slog.Logger
	w *flushWriter
}

// OpenAccessLog opens dest: "stdout", "stderr", "off" or a file path.
func OpenAccessLog(dest string, m *Metrics, errLog *slog.Logger) (*AccessLog, error) {
	return openAccessLog(dest, false, m, errLog)
}

func openAccessLog(dest string, text bool, m *Metrics, errLog *slog.Logger) (*AccessLog, error) {
	var out io.Writer
	var closer io.Closer
	switch dest {
	case "off":
		return &AccessLog{}, nil
	case "stdout", "":
		out = os.Stdout
	case "stderr":
		out = os.Stderr
	default:
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("opening access log: %w", err)
		}
		out, closer = f, f
	}
	return newAccessLog(out, closer, m, errLog, text), nil
}

// NewAccessLog writes the access log to w (tests, custom sinks).
func NewAccessLog(w io.Writer, m *Metrics, errLog *slog.Logger) *AccessLog {
	return newAccessLog(w, nil, m, errLog, false)
}

func newAccessLog(out io.Writer, closer io.Closer, m *Metrics, errLog *slog.Logger, text bool) *AccessLog {
	fw := &flushWriter{out: out, bw: bufio.NewWriterSize(out, 64<<10), closer: closer, metrics: m, errLog: errLog, stop: make(chan struct{}), done: make(chan struct{})}
	go fw.loop(200 * time.Millisecond)
	opts := &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.LevelKey {
				return slog.Attr{} // every line is Info; the level is noise
			}
			return a
		},
	}
	var h slog.Handler = slog.NewJSONHandler(fw, opts)
	if text {
		h = slog.NewTextHandler(fw, opts)
	}
	return &AccessLog{Logger: slog.New(h), w: fw}
}

// Flush writes buffered lines out now.
func (a *AccessLog) Flush() {
	if a != nil && a.w != nil {
		a.w.flush()
	}
}

// Close flushes and closes the log.
func (a *AccessLog) Close() error {
	if a == nil || a.w == nil {
		return nil
	}
	return a.w.Close()
}

type flushWriter struct {
	mu      sync.Mutex
	out     io.Writer
	bw      *bufio.Writer
	pending int // lines in bw not yet written out
	closer  io.Closer
	metrics *Metrics
	errLog  *slog.Logger
	failed  bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

// Write is called once per log line by the slog handler.
func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		f.drop(1, nil)
		return len(p), nil
	}
	if len(p) > f.bw.Available() && f.bw.Buffered() > 0 {
		f.flushLocked()
	}
	if _, err := f.bw.Write(p); err != nil {
		f.drop(f.pending+1, err)
		return len(p), nil
	}
	f.pending++
	return len(p), nil
}

// drop counts n lost lines; the buffer is reset so the next batch retries
// the destination (a full disk may recover).
func (f *flushWriter) drop(n int, err error) {
	if f.metrics != nil {
		f.metrics.AccessLogDrops.Add(float64(n))
	}
	f.pending = 0
	f.bw.Reset(f.out)
	if err != nil && !f.failed && f.errLog != nil {
		f.failed = true
		f.errLog.Error("access log write failed; lines are being dropped and counted", "err", err)
	}
}

func (f *flushWriter) loop(every time.Duration) {
	defer close(f.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			f.flush()
		case <-f.stop:
			return
		}
	}
}

func (f *flushWriter) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushLocked()
}

func (f *flushWriter) flushLocked() {
	if f.bw.Buffered() == 0 {
		return
	}
	if err := f.bw.Flush(); err != nil {
		f.drop(f.pending, err)
		return
	}
	f.pending = 0
}

func (f *flushWriter) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.mu.Unlock()
	close(f.stop)
	<-f.done
	f.flush()
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	if f.closer != nil {
		return f.closer.Close()
	}
	return nil
}
