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
//
// Deadlines are coarse (issue 15): setting one costs more than a small
// exchange's own work, so a deadline already set is kept while it falls
// within the last sixteenth of the timeout asked for. A timeout d then
// fires between d·15/16 and d after the last progress, never later; a
// hard deadline (Total) is always exact.
type upstreamConn struct {
	net.Conn
	headerTimeout, idle time.Duration
	readHard            time.Time
	writeHard           time.Time
	// readSet and writeSet are the deadlines set on Conn (zero: none).
	readSet, writeSet time.Time
	awaitingHeader    bool
	// writeFresh: the write deadline was just decided (SetWriteDeadline);
	// the request's first Write needs no second look (nor a clock read).
	writeFresh bool
}

// want is the deadline a timeout d asks for from now, capped by hard, and
// whether one already set (set) is close enough to keep.
func want(set, hard time.Time, d time.Duration) (time.Time, bool) {
	if d <= 0 {
		return hard, set.Equal(hard)
	}
	t := time.Now().Add(d)
	if !hard.IsZero() && hard.Before(t) {
		return hard, set.Equal(hard)
	}
	// Keep a deadline in [t - d/16, t].
	keep := !set.IsZero() && !set.After(t) && !set.Before(t.Add(-d/16)) && (hard.IsZero() || !set.After(hard))
	return t, keep
}

func (c *upstreamConn) armWrite(hard time.Time, d time.Duration) error {
	t, keep := want(c.writeSet, hard, d)
	if keep {
		return nil
	}
	c.writeSet = t
	return c.Conn.SetWriteDeadline(t)
}

func (c *upstreamConn) armRead(hard time.Time, d time.Duration) error {
	t, keep := want(c.readSet, hard, d)
	if keep {
		return nil
	}
	c.readSet = t
	return c.Conn.SetReadDeadline(t)
}

func (c *upstreamConn) SetWriteDeadline(t time.Time) error {
	c.writeHard = t
	c.writeFresh = true
	return c.armWrite(t, c.idle)
}

func (c *upstreamConn) SetReadDeadline(t time.Time) error {
	// fasthttp sets the read deadline right after writing a request.
	c.readHard = t
	c.awaitingHeader = true
	return c.armRead(t, c.headerTimeout)
}

func (c *upstreamConn) SetDeadline(t time.Time) error {
	if err := c.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

func (c *upstreamConn) Write(p []byte) (int, error) {
	if c.writeFresh {
		c.writeFresh = false
	} else if c.idle > 0 {
		if err := c.armWrite(c.writeHard, c.idle); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	if !c.awaitingHeader && c.idle > 0 {
		if err := c.armRead(c.readHard, c.idle); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.awaitingHeader {
		c.awaitingHeader = false
	}
	return n, err
}

// forgetDeadlines records that deadlines were cleared on the connection
// below this one (after the TLS handshake).
func (c *upstreamConn) forgetDeadlines() {
	c.readSet, c.writeSet = time.Time{}, time.Time{}
}
