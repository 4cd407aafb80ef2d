package upstream

import (
	"crypto/tls"
	"net"
	"strings"
	"time"
)

// DialTunnel opens a connection to inst outside its pool, for a request
// that asks for a protocol upgrade (WebSocket): TCP within the connect
// timeout, TLS when the instance is https. The response header block that
// comes back is read as strictly as on pooled connections (bare LF or CR,
// obs-fold and NUL fail it); after it the bytes belong to the upgraded
// protocol and pass untouched. The connection is never pooled: the caller
// closes it.
func (up *Upstream) DialTunnel(inst *Instance) (net.Conn, error) {
	t := up.Timeouts
	d := net.Dialer{Timeout: t.Connect}
	raw, err := d.Dial("tcp", inst.Addr)
	if err != nil {
		return nil, err
	}
	var c net.Conn = raw
	if inst.TLS {
		tc := tls.Client(raw, &tls.Config{ServerName: strings.Trim(strings.Split(inst.Host, ":")[0], "[]"), MinVersion: tls.VersionTLS12,
			// HTTP/1.1: an upgrade does not exist in HTTP/2.
			NextProtos: []string{"http/1.1"}})
		if t.Connect > 0 {
			_ = raw.SetDeadline(time.Now().Add(t.Connect))
		}
		if err := tc.Handshake(); err != nil {
			_ = raw.Close()
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
		}
		_ = raw.SetDeadline(time.Time{})
		c = tc
	}
	return &tunnelConn{Conn: c, scanning: true}, nil
}

// tunnelConn checks the response header block of an upgrade request, then
// steps aside.
type tunnelConn struct {
	net.Conn
	scanning bool
	scan     respScan
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.scanning && n > 0 {
		if serr := c.scan.feed(p[:n]); serr != nil {
			return 0, serr
		}
		if c.scan.done {
			c.scanning = false
		}
	}
	return n, err
}

// CloseWrite half-closes the connection (TCP FIN, or TLS close_notify).
func (c *tunnelConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
