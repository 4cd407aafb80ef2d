package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is a real redis-server on a free loopback port, without
// persistence, killed when the test ends.
type Redis struct {
	t    testing.TB
	Addr string
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts redis-server (Debian's redis-server package). A missing
// binary fails the test with the install command: it is never skipped.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is missing: install it (apt-get install --no-install-recommends redis-server; .ci/run does)")
	}
	r := &Redis{t: t, dir: t.TempDir()}
	var err error
	for range 5 {
		r.Addr = freeAddr(t)
		if err = r.start(); err == nil {
			t.Cleanup(r.Kill)
			return r
		}
	}
	t.Fatalf("starting redis-server: %v", err)
	return nil
}

// URL is the redis:// URL of database 0, with extra query (e.g.
// "resync=200ms") when given.
func (r *Redis) URL(query ...string) string {
	u := "redis://" + r.Addr + "/0"
	if len(query) > 0 {
		u += "?" + strings.Join(query, "&")
	}
	return u
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (r *Redis) start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--daemonize", "no", "--logfile", "", "--loglevel", "warning")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	var logged strings.Builder
	var logMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			logMu.Lock()
			logged.WriteString(sc.Text() + "\n")
			logMu.Unlock()
		}
		_ = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			logMu.Lock()
			defer logMu.Unlock()
			return fmt.Errorf("redis-server exited: %s", logged.String())
		default:
		}
		if r.Ping() == nil {
			r.mu.Lock()
			r.cmd, r.done = cmd, done
			r.mu.Unlock()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-done
	return fmt.Errorf("redis-server on %s did not answer PING", r.Addr)
}

// Ping sends PING on a new connection.
func (r *Redis) Ping() error {
	_, err := r.Do("PING")
	return err
}

// Do sends one command (inline, arguments without spaces) on a new
// connection and returns the first line of the reply.
func (r *Redis) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "-") {
		return "", fmt.Errorf("redis: %s", line[1:])
	}
	return line, nil
}

// Kill stops the server at once (SIGKILL): its data is gone, and a
// Restart starts empty.
func (r *Redis) Kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
	// A snapshot an earlier Shutdown left must not come back.
	_ = os.Remove(filepath.Join(r.dir, "dump.rdb"))
}

// Shutdown stops the server after writing its data to disk (SHUTDOWN
// SAVE), as a Redis with persistence stops: a Restart comes back with it.
func (r *Redis) Shutdown() {
	r.t.Helper()
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_, _ = r.Do("SHUTDOWN", "SAVE") // the connection closes without a reply
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		r.t.Fatal("redis-server did not shut down")
	}
	if _, err := os.Stat(filepath.Join(r.dir, "dump.rdb")); err != nil {
		r.t.Fatalf("redis-server saved no data at shutdown: %v", err)
	}
}

// Pause stops the server without closing its connections (SIGSTOP): it
// accepts connections and commands but answers nothing, as a store
// behind a partitioned network or a stalled host does. Resume continues
// it with its data.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if cmd == nil {
		r.t.Fatal("redis-server is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
}

// Restart starts the server again on the same address (after Kill:
// empty; after Shutdown: with its data).
func (r *Redis) Restart() {
	r.t.Helper()
	var err error
	for range 50 {
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("restarting redis-server on %s: %v", r.Addr, err)
}
