package demo

import (
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
)

// TestDemoVisitors: the visitors reach course-seats through the gateway,
// and stop, for good, when the demo stops.
func TestDemoVisitors(t *testing.T) {
	t.Parallel()
	d, _ := startDemoWith(t, Options{ConfigPath: repoRoutes(t, nil), FreePorts: true, Visitors: 50})
	if d.visitors == nil {
		t.Fatal("no visitors started")
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return d.Legacy.Hits("/seats.php") >= 10 },
		func() string { return "the visitors never reached legacy's /seats.php" })
	stopDemo(d)
	select {
	case <-d.visitors.done:
	default:
		t.Fatal("the visitors still run after the demo stopped")
	}
	n := d.Legacy.Hits("/seats.php")
	time.Sleep(300 * time.Millisecond) // 15 ticks at 50 a second
	if m := d.Legacy.Hits("/seats.php"); m != n {
		t.Fatalf("%d requests after the demo stopped", m-n)
	}
}

// TestVisitorsLoopback: the visitors only ever call a loopback address.
func TestVisitorsLoopback(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, addr, want string }{
		{"loopback v4", "127.0.0.1:8080", "127.0.0.1:8080"},
		{"loopback v6", "[::1]:8080", "[::1]:8080"},
		{"every v4 address", "0.0.0.0:8080", "127.0.0.1:8080"},
		{"every address", "[::]:8080", "[::1]:8080"},
		{"another host", "192.0.2.7:8080", ""},
		{"a name", "example.com:8080", ""},
		{"garbage", "8080", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := loopback(c.addr)
			if got != c.want || ok != (c.want != "") {
				t.Fatalf("loopback(%q) = %q, %v; want %q", c.addr, got, ok, c.want)
			}
		})
	}
}
