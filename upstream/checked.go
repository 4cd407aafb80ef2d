package upstream

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// checkedConn guards one pooled upstream connection against the ways a
// connection can carry one exchange's bytes into the next:
//
//   - before a request is written on a reused connection it checks,
//     without blocking, that nothing arrived while it was idle: bytes the
//     upstream sent after its last response was complete would otherwise
//     be read as the next client's response (and a connection the
//     upstream closed would fail the request after sending it). Such a
//     connection is closed and the request goes on a fresh one: nothing
//     was sent, so this is not a re-send;
//   - it reads every response header block strictly (RFC 9112 §2.2, §5.2):
//     a bare LF or CR, or an obs-fold continuation line, fails the
//     response (502) and closes the connection instead of letting
//     fasthttp's lenient parser split one header into two;
//   - a 101 Switching Protocols the gateway did not ask for leaves the
//     connection in another protocol: it is never reused.
//
// It sits above TLS, so it sees the response bytes in clear; peeking looks
// at the TCP connection below.
type checkedConn struct {
	net.Conn
	raw      net.Conn // the TCP connection, for the idle check
	peeker   *idlePeeker
	used     bool   // a request was written on it before
	poisoned string // why the last exchange left it unusable, "" when it did not
	scanning bool
	scan     respScan
	discard  func(reason string)
}

// ErrStaleConnection means a pooled connection was found unusable before
// anything was written on it; fasthttp retries such a request on a fresh
// connection (see newHostClient's RetryIfErr).
var ErrStaleConnection = errors.New("pooled upstream connection unusable; nothing was sent on it")

// SetWriteDeadline is fasthttp's first call on a connection for each
// request: the place to refuse a reused connection that is not clean.
func (c *checkedConn) SetWriteDeadline(t time.Time) error {
	if c.used {
		reason := c.poisoned
		if reason == "" {
			if c.peeker == nil {
				c.peeker = newIdlePeeker(c.raw)
			}
			reason = c.peeker.state()
		}
		if reason != "" {
			if c.discard != nil {
				c.discard(reason)
			}
			return ErrStaleConnection
		}
	}
	return c.Conn.SetWriteDeadline(t)
}

// SetReadDeadline is called once the request is written: the response
// header block comes next.
func (c *checkedConn) SetReadDeadline(t time.Time) error {
	c.used = true
	c.scanning = true
	c.scan = respScan{}
	return c.Conn.SetReadDeadline(t)
}

func (c *checkedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.scanning && n > 0 {
		if serr := c.scan.feed(p[:n]); serr != nil {
			return 0, serr
		}
		if c.scan.done {
			c.scanning = false
			if c.scan.status == 101 {
				c.poisoned = "upgrade"
			}
		}
	}
	return n, err
}

// idlePeeker looks at an idle connection's socket without blocking. It is
// built once per connection, so the check allocates nothing per request.
type idlePeeker struct {
	rc     syscall.RawConn // nil: not a socket (no check)
	peekFn func(fd uintptr)
	reason string
	buf    [1]byte
}

func newIdlePeeker(c net.Conn) *idlePeeker {
	p := &idlePeeker{}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			p.rc = rc
		}
	}
	p.peekFn = p.peek
	return p
}

// state reports why an idle connection must not be reused: the upstream
// sent bytes nobody asked for ("unsolicited"), or closed it ("closed");
// "" when it is clean.
func (p *idlePeeker) state() string {
	if p.rc == nil {
		return ""
	}
	p.reason = ""
	// Control, not Read: the peek never waits, so it needs none of the
	// poller's read preparation.
	_ = p.rc.Control(p.peekFn)
	return p.reason
}

func (p *idlePeeker) peek(fd uintptr) {
	n, _, rerr := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case n > 0:
		p.reason = "unsolicited"
	case rerr == nil:
		p.reason = "closed" // orderly shutdown: EOF
	case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK || rerr == syscall.EINTR:
	default:
		p.reason = "closed" // reset
	}
}

var (
	errBareLF  = errors.New("upstream response header: bare LF")
	errBareCR  = errors.New("upstream response header: bare CR")
	errObsFold = errors.New("upstream response header: obs-fold line")
	errHdrNUL  = errors.New("upstream response header: NUL byte")
)

// respScan checks response header blocks byte by byte: every line ends
// in CRLF, no line folds, no NUL. Interim 1xx responses (other than 101)
// are followed by another header block, which is checked too.
type respScan struct {
	done    bool
	prevCR  bool
	lineLen int
	lines   int // lines of the current block seen
	status  int
	digits  int // status digits read on the status line
	spaces  int // spaces seen on the status line
}

func (s *respScan) feed(p []byte) error {
	for _, ch := range p {
		if s.done {
			return nil
		}
		switch {
		case ch == '\n':
			if !s.prevCR {
				return errBareLF
			}
			s.prevCR = false
			if s.lineLen == 0 && s.lines > 0 {
				// End of a header block.
				if s.status >= 100 && s.status < 200 && s.status != 101 {
					*s = respScan{} // an interim response: the final one follows
					continue
				}
				s.done = true
				continue
			}
			s.lines++
			s.lineLen = 0
		case s.prevCR:
			return errBareCR
		case ch == '\r':
			s.prevCR = true
		case ch == 0:
			return errHdrNUL
		default:
			if s.lineLen == 0 && s.lines > 0 && (ch == ' ' || ch == '\t') {
				return errObsFold
			}
			if s.lines == 0 {
				// Status line: "HTTP/1.1 200 OK".
				if ch == ' ' {
					s.spaces++
				} else if s.spaces == 1 && s.digits < 3 && ch >= '0' && ch <= '9' {
					s.status = s.status*10 + int(ch-'0')
					s.digits++
				}
			}
			s.lineLen++
		}
	}
	return nil
}
