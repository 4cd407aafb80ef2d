package upstream

import (
	"net"
	"time"
)

// upstreamConn enforces the upstream timeouts on one pooled connection.
// fasthttp sets one deadline per phase; this wrapper turns that into:
//   - while the request is written: at most Idle between two writes;
//   - once it is written: ResponseHeader for the first response byte;
//   - then at most Idle between two reads while the body streams;
//
// always capped by the deadline fasthttp asked for (the Total timeout, when
// set, passed through DoDeadline).
type upstreamConn struct {
	net.Conn
	headerTimeout, idle time.Duration
	readHard            time.Time
	writeHard           time.Time
	awaitingHeader      bool
}

func minDeadline(hard time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return hard
	}
	t := time.Now().Add(d)
	if !hard.IsZero() && hard.Before(t) {
		return hard
	}
	return t
}

func (c *upstreamConn) SetWriteDeadline(t time.Time) error {
	c.writeHard = t
	return c.Conn.SetWriteDeadline(minDeadline(t, c.idle))
}

func (c *upstreamConn) SetReadDeadline(t time.Time) error {
	// fasthttp sets the read deadline right after writing a request.
	c.readHard = t
	c.awaitingHeader = true
	return c.Conn.SetReadDeadline(minDeadline(t, c.headerTimeout))
}

func (c *upstreamConn) SetDeadline(t time.Time) error {
	if err := c.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

func (c *upstreamConn) Write(p []byte) (int, error) {
	if c.idle > 0 {
		if err := c.Conn.SetWriteDeadline(minDeadline(c.writeHard, c.idle)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	if !c.awaitingHeader && c.idle > 0 {
		if err := c.Conn.SetReadDeadline(minDeadline(c.readHard, c.idle)); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.awaitingHeader {
		c.awaitingHeader = false
	}
	return n, err
}
