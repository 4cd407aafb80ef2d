package tunnel

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		got <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-got
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// open joins a client and an upstream connection through a tunnel of s;
// it returns the client's and the upstream's far ends.
func open(t *testing.T, s *Set, m *Metrics, cfg Config) (client, up net.Conn, done chan struct{}) {
	t.Helper()
	client, gwClient := pair(t)
	gwUp, up := pair(t)
	cfg.Up, cfg.UpR, cfg.Metrics = gwUp, bufio.NewReader(gwUp), m
	cfg.Head = []byte("HTTP/1.1 101 Switching Protocols\r\n\r\n")
	cfg.Log = slog.New(slog.DiscardHandler)
	tn := s.Open(cfg)
	done = make(chan struct{})
	go func() {
		defer close(done)
		tn.Run(gwClient)
		gwClient.Close()
	}()
	head := make([]byte, len(cfg.Head))
	if _, err := io.ReadFull(client, head); err != nil {
		t.Fatal(err)
	}
	return client, up, done
}

func waitDone(t *testing.T, done chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the tunnel did not end")
	}
}

// TestTunnelCopiesAndHalfCloses: bytes go both ways; a client's
// half-close reaches the upstream as one, which still answers; the
// closes are counted by who closed.
func TestTunnelCopiesAndHalfCloses(t *testing.T) {
	var s Set
	m := NewMetrics()
	client, up, done := open(t, &s, m, Config{Route: "r", Idle: 5 * time.Second})
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := client.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(up) // ends at the half-close
	if err != nil || string(got) != "ping" {
		t.Fatalf("upstream read %q, %v", got, err)
	}
	if _, err := up.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	up.Close()
	back, _ := io.ReadAll(client)
	if string(back) != "pong" {
		t.Fatalf("client read %q after its half-close, want the upstream's answer", back)
	}
	waitDone(t, done)
	if v := testutil.ToFloat64(m.Closed.WithLabelValues("r", "client")); v != 1 {
		t.Errorf("closes by client = %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.Bytes.WithLabelValues("r", "to_upstream")); v != 4 {
		t.Errorf("bytes to upstream = %v", v)
	}
	if s.Count() != 0 {
		t.Errorf("%d tunnels left open", s.Count())
	}
}

// TestTunnelIdle: a tunnel where nothing moves ends at its idle timeout.
func TestTunnelIdle(t *testing.T) {
	var s Set
	m := NewMetrics()
	_, _, done := open(t, &s, m, Config{Route: "r", Idle: 200 * time.Millisecond})
	waitDone(t, done)
	if v := testutil.ToFloat64(m.Closed.WithLabelValues("r", "idle")); v != 1 {
		t.Errorf("closes for idle = %v, want 1", v)
	}
}

// TestSetDrain: a WebSocket gets a 1001 close frame and, once the client
// closes, the drain ends early with nothing cut; a tunnel of another
// protocol that stays busy is cut when the drain's time runs out, and
// Drain says so.
func TestSetDrain(t *testing.T) {
	var s Set
	m := NewMetrics()
	wsClient, _, wsDone := open(t, &s, m, Config{Route: "ws", WebSocket: true, Idle: time.Minute})
	go func() {
		// The client reads the close frame, then closes.
		f := make([]byte, len(closeGoingAway))
		if _, err := io.ReadFull(wsClient, f); err == nil && f[0] == 0x88 {
			wsClient.Close()
		}
	}()
	drained := make(chan int, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		drained <- s.Drain(ctx)
	}()
	waitDone(t, wsDone)
	if n := <-drained; n != 0 {
		t.Errorf("Drain cut %d tunnels, want 0 (the WebSocket closed on its close frame)", n)
	}
	if v := testutil.ToFloat64(m.Closed.WithLabelValues("ws", "shutdown")); v != 1 {
		t.Errorf("WebSocket closes by shutdown = %v, want 1", v)
	}

	client, up, done := open(t, &s, m, Config{Route: "raw", Idle: time.Minute})
	go func() { _, _ = io.Copy(up, up) }() // an echo that never closes
	go func() {
		for {
			if _, err := client.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if n := s.Drain(ctx); n != 1 {
		t.Errorf("Drain cut %d tunnels, want 1", n)
	}
	waitDone(t, done)
	if v := testutil.ToFloat64(m.Closed.WithLabelValues("raw", "shutdown")); v != 1 {
		t.Errorf("closes by shutdown = %v, want 1", v)
	}
}
