package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
)

// The fleet tests run real gateway processes: the binary is built once
// for the package (buildStrangler) and each replica is `strangler serve`
// in its own working directory (so each has its own local cache,
// strangler-overrides.json) on one shared routes file. They are not
// parallel: Go runs them one by one before the parallel tests, so their
// processes and load never compete with the streaming tests' gigabytes
// for the two cores.

const fleetToken = "fleet-test-token-0123456789"

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// buildStrangler builds cmd/strangler once per test binary.
func buildStrangler(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "strangler-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "strangler")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/strangler").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// fleetRoutes is the fleet's routes file: one route, course-detail, on
// the new side; legacy and new answer with their name.
func fleetRoutes(t *testing.T, extra string) (path string) {
	t.Helper()
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "legacy") }))
	t.Cleanup(legacy.Close)
	modern := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "new") }))
	t.Cleanup(modern.Close)
	path = filepath.Join(t.TempDir(), "routes.yaml")
	writeFleetRoutes(t, path, legacy.URL, modern.URL, extra)
	return path
}

func writeFleetRoutes(t *testing.T, path, legacy, modern, extra string) {
	t.Helper()
	y := fmt.Sprintf(`server:
  access_log: "off"
  reload: {watch: 0s}
legacy: legacy
upstreams:
  legacy: {urls: [%q]}
  courses: {urls: [%q]}
routes:
  - id: course-detail
    match: {prefix: /courses}
    side: new
    new: {upstream: courses}
%s`, legacy, modern, extra)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
}

// replica is one gateway process.
type replica struct {
	t        *testing.T
	name     string
	dir      string
	routes   string
	store    string
	cmd      *exec.Cmd
	log      *syncBuffer
	done     chan struct{}
	URL, Ops string
	client   *http.Client
}

// startReplica runs `strangler serve` on routes with STRANGLER_STORE set
// to store, in dir (its local cache lives there); stopped when the test
// ends.
func startReplica(t *testing.T, name, routes, store, dir string) *replica {
	t.Helper()
	bin := buildStrangler(t)
	r := &replica{t: t, name: name, dir: dir, routes: routes, store: store, log: &syncBuffer{}, done: make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	r.cmd = exec.Command(bin, "serve", "-config", routes, "-log-format", "json", "-listen", "127.0.0.1:0", "-operator-listen", "127.0.0.1:0")
	r.cmd.Dir = dir
	r.cmd.Env = append(os.Environ(), "STRANGLER_STORE="+store, "STRANGLER_ADMIN_TOKEN="+fleetToken)
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			_, _ = r.log.Write([]byte(line + "\n"))
			var ev struct{ Msg, Public, Operator string }
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Msg == "listening" {
				listening <- [2]string{ev.Public, ev.Operator}
			}
		}
		_ = r.cmd.Wait()
		close(r.done)
	}()
	select {
	case a := <-listening:
		r.URL, r.Ops = "http://"+a[0], "http://"+a[1]
	case <-r.done:
		t.Fatalf("replica %s exited at start:\n%s", name, r.log.String())
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Kill()
		t.Fatalf("replica %s did not start:\n%s", name, r.log.String())
	}
	t.Cleanup(r.stop)
	return r
}

// stop sends SIGTERM and waits for the drain.
func (r *replica) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// body GETs path on the public listener: the answering side's name.
func (r *replica) body(path string) (int, string) {
	resp, err := r.client.Get(r.URL + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (r *replica) serves(want string) bool {
	code, b := r.body("/courses/1")
	return code == 200 && b == want
}

// admin calls the admin API with the token.
func (r *replica) admin(method, path, body string) (int, map[string]any) {
	r.t.Helper()
	req, _ := http.NewRequest(method, r.Ops+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	resp, err := r.client.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s on %s: %v", method, path, r.name, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (r *replica) flip(side, ttl string) (int, map[string]any) {
	b := fmt.Sprintf(`{"side":%q,"reason":"fleet test"`, side)
	if ttl != "" {
		b += fmt.Sprintf(`,"ttl":%q`, ttl)
	}
	return r.admin("POST", "/admin/routes/course-detail/side", b+"}")
}

// metric reads an unlabelled sample from /metrics (-1 when absent).
func (r *replica) metric(name string) float64 {
	resp, err := r.client.Get(r.Ops + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// ctl runs `strangler ctl` against the replica.
func (r *replica) ctl(args ...string) (int, string) {
	cmd := exec.Command(buildStrangler(r.t), append([]string{"ctl", "-addr", r.Ops, "-token", fleetToken}, args...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatal(err)
	}
	return code, string(out)
}

func (r *replica) audit(query string) []map[string]any {
	r.t.Helper()
	code, doc := r.admin("GET", "/admin/audit?"+query, "")
	if code != 200 {
		r.t.Fatalf("audit: %d %v", code, doc)
	}
	var out []map[string]any
	for _, e := range doc["events"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

func startFleet(t *testing.T, routes, store string, n int) []*replica {
	t.Helper()
	out := make([]*replica, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = startReplica(t, string(rune('A'+i)), routes, store, t.TempDir())
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// TestFleetFlipReachesEveryReplica: a flip through A is served by B and
// C within 1 s, delivered by the notification alone (the resync is an
// hour away); 100 flips measure the propagation time; strangler ctl
// fleet shows the three replicas at the same revision.
func TestFleetFlipReachesEveryReplica(t *testing.T) {
	rs := testutil.StartRedis(t)
	routes := fleetRoutes(t, "")
	fleet := startFleet(t, routes, rs.URL("resync=1h"), 3)
	a := fleet[0]
	for _, r := range fleet {
		if !r.serves("new") {
			t.Fatalf("%s does not serve new before the flip", r.name)
		}
	}
	// took: from sending the flip to A until B and C both serve it;
	// after: from A's answer until then. B and C are polled back to back
	// (no sleep) so the figure is not rounded up to a polling period.
	var took, after []time.Duration
	side := "new"
	for i := range 100 {
		side = map[string]string{"new": "legacy", "legacy": "new"}[side]
		start := time.Now()
		if code, doc := a.flip(side, ""); code != 200 {
			t.Fatalf("flip %d: %d %v", i, code, doc)
		}
		answered := time.Now()
		if !a.serves(side) {
			t.Fatalf("A does not serve its own flip at once")
		}
		for _, r := range fleet[1:] {
			for !r.serves(side) {
				if time.Since(start) > time.Second {
					t.Fatalf("flip %d to %s: %s still serves the other side after 1s\n%s", i, side, r.name, r.log.String())
				}
			}
		}
		took = append(took, time.Since(start))
		after = append(after, time.Since(answered))
	}
	slices.Sort(took)
	slices.Sort(after)
	t.Logf("flip through A until B and C both serve it, over %d flips: median %v, p90 %v, max %v; after A answered: median %v, max %v",
		len(took), took[len(took)/2], took[len(took)*9/10], took[len(took)-1], after[len(after)/2], after[len(after)-1])

	testutil.Eventually(t, 5*time.Second, func() bool {
		_, out := fleet[2].ctl("fleet")
		return strings.Contains(out, "serves revision 100") && len(regexp.MustCompile(`(?m)^\S+\s+\S+\s+100\s+connected\s`).FindAllString(out, -1)) == 3
	}, func() string { _, out := fleet[2].ctl("fleet"); return "ctl fleet:\n" + out })
	_, out := fleet[1].ctl("fleet")
	t.Logf("strangler ctl fleet:\n%s", out)
	for _, r := range fleet {
		if !strings.Contains(out, r.Ops[len("http://"):]) {
			t.Fatalf("ctl fleet does not list %s's operator address %s:\n%s", r.name, r.Ops, out)
		}
	}
	if n := len(a.audit("action=side&limit=1000")); n != 100 {
		t.Fatalf("%d side events in the audit trail, want 100", n)
	}
}

// TestFleetTTLExpiresOnceForTheFleet: a TTL flip reverts on all three
// replicas, and the store gets one expire event, not three.
func TestFleetTTLExpiresOnceForTheFleet(t *testing.T) {
	rs := testutil.StartRedis(t)
	fleet := startFleet(t, fleetRoutes(t, ""), rs.URL("resync=1s"), 3)
	if code, doc := fleet[1].flip("legacy", "2s"); code != 200 {
		t.Fatalf("flip: %d %v", code, doc)
	}
	for _, r := range fleet {
		testutil.Eventually(t, time.Second, func() bool { return r.serves("legacy") }, func() string { return r.name + " never served the flip" })
	}
	for _, r := range fleet {
		testutil.Eventually(t, 5*time.Second, func() bool { return r.serves("new") }, func() string { return r.name + " still serves legacy after the TTL" })
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return len(fleet[0].audit("action=expire")) >= 1 }, func() string { return "no expire event" })
	// Three replicas tick every second; give them a few more.
	time.Sleep(2500 * time.Millisecond)
	ev := fleet[2].audit("action=expire")
	if len(ev) != 1 || ev[0]["route"] != "course-detail" || ev[0]["by"] != "ttl" {
		t.Fatalf("want one expire event for the fleet, got %v", ev)
	}
	for _, r := range fleet {
		if code, doc := r.admin("GET", "/admin/overrides", ""); code != 200 || len(doc["overrides"].([]any)) != 0 {
			t.Fatalf("%s still lists overrides: %v", r.name, doc)
		}
	}
}

// TestFleetStoreDown: Redis killed under load: zero failed requests, the
// last overrides still applied, /readyz ready, strangler_store_up 0,
// writes refused with the documented error; the routes file (pinned)
// still flips. Redis restarted empty: the state is re-seeded from the
// replicas, audited once, and writes work again.
func TestFleetStoreDown(t *testing.T) {
	rs := testutil.StartRedis(t)
	routes := fleetRoutes(t, "")
	fleet := startFleet(t, routes, rs.URL("resync=500ms"), 3)
	if code, doc := fleet[0].flip("legacy", ""); code != 200 {
		t.Fatalf("flip: %d %v", code, doc)
	}
	for _, r := range fleet {
		testutil.Eventually(t, time.Second, func() bool { return r.serves("legacy") }, func() string { return r.name + " never served the flip" })
	}
	stop := make(chan struct{})
	var waits []func() (int64, int64)
	for _, r := range fleet {
		waits = append(waits, loadLoop(r.client, r.URL+"/courses/1", 4, stop))
	}
	time.Sleep(200 * time.Millisecond)
	rs.Kill()
	for _, r := range fleet {
		testutil.Eventually(t, 5*time.Second, func() bool { return r.metric("strangler_store_up") == 0 }, func() string {
			return r.name + ": strangler_store_up did not go to 0"
		})
	}
	time.Sleep(time.Second)
	close(stop)
	var sent, failed int64
	for _, w := range waits {
		s, f := w()
		sent, failed = sent+s, failed+f
	}
	t.Logf("under load while Redis was killed: %d requests, %d failed", sent, failed)
	if failed != 0 || sent < 100 {
		t.Fatalf("%d of %d requests failed", failed, sent)
	}
	for _, r := range fleet {
		if !r.serves("legacy") {
			t.Fatalf("%s lost the override with the store down", r.name)
		}
		resp, err := r.client.Get(r.Ops + "/readyz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s not ready with the store down: %v %v", r.name, resp, err)
		}
		resp.Body.Close()
	}
	code, doc := fleet[1].flip("new", "")
	if code != 503 || doc["error"] != "store_unavailable" || !strings.Contains(fmt.Sprint(doc["hint"]), "pinned: true") ||
		!strings.Contains(fmt.Sprint(doc["message"]), "unreachable") {
		t.Fatalf("a write with the store down: %d %v", code, doc)
	}
	exit, out := fleet[2].ctl("flip", "course-detail", "new", "-reason", "x")
	if exit != 1 || !strings.Contains(out, "store_unavailable") || !strings.Contains(out, "routes.yaml") {
		t.Fatalf("ctl flip with the store down: exit %d\n%s", exit, out)
	}
	// The documented lever: routes.yaml pins the route, every replica
	// reloads.
	y, _ := os.ReadFile(routes)
	pinned := strings.Replace(string(y), "    side: new\n", "    side: new\n    pinned: true\n", 1)
	if err := os.WriteFile(routes, []byte(pinned), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, r := range fleet {
		_ = r.cmd.Process.Signal(syscall.SIGHUP)
		testutil.Eventually(t, 5*time.Second, func() bool { return r.serves("new") }, func() string { return r.name + " ignores the pinned route" })
	}
	if err := os.WriteFile(routes, y, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, r := range fleet {
		_ = r.cmd.Process.Signal(syscall.SIGHUP)
		testutil.Eventually(t, 5*time.Second, func() bool { return r.serves("legacy") }, func() string { return r.name + " did not go back to the override" })
	}

	// Redis comes back empty: the replicas re-seed it with the state
	// they serve, once.
	rs.Restart()
	for _, r := range fleet {
		testutil.Eventually(t, 10*time.Second, func() bool { return r.metric("strangler_store_up") == 1 }, func() string { return r.name + ": store never up again" })
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		code, doc := fleet[0].admin("GET", "/admin/overrides", "")
		return code == 200 && len(doc["overrides"].([]any)) == 1
	}, func() string { return "the store was not re-seeded" })
	time.Sleep(time.Second)
	reseeds := fleet[1].audit("action=reseed")
	if len(reseeds) != 1 {
		t.Fatalf("want one reseed event, got %v", reseeds)
	}
	if code, doc := fleet[2].flip("new", ""); code != 200 {
		t.Fatalf("a write after the store came back: %d %v", code, doc)
	}
	for _, r := range fleet {
		testutil.Eventually(t, time.Second, func() bool { return r.serves("new") }, func() string { return r.name + " never served the flip after the reseed" })
	}
}

// TestFleetRestartWhileStoreDown: a replica restarted while Redis is down
// starts from its local cache and says so; one without a cache starts
// with routes.yaml alone and says so.
func TestFleetRestartWhileStoreDown(t *testing.T) {
	rs := testutil.StartRedis(t)
	routes := fleetRoutes(t, "")
	url := rs.URL("resync=500ms")
	a := startReplica(t, "A", routes, url, t.TempDir())
	if code, doc := a.flip("legacy", ""); code != 200 {
		t.Fatalf("flip: %d %v", code, doc)
	}
	rs.Kill()
	a.stop()
	a2 := startReplica(t, "A2", routes, url, a.dir)
	if !a2.serves("legacy") {
		t.Fatalf("A restarted from its cache does not serve the override:\n%s", a2.log.String())
	}
	if !strings.Contains(a2.log.String(), "store unreachable at start: serving the local cache") {
		t.Fatalf("A does not say it started from its cache:\n%s", a2.log.String())
	}
	_, fs := a2.admin("GET", "/admin/fleet", "")
	if fs["started_from"] != "cache" || fs["up"] != false {
		t.Fatalf("fleet state %v", fs)
	}
	d := startReplica(t, "D", routes, url, t.TempDir())
	if !d.serves("new") {
		t.Fatal("a replica without a cache serves something other than routes.yaml")
	}
	if !strings.Contains(d.log.String(), "store unreachable at start and no local cache") {
		t.Fatalf("D does not say it started without state:\n%s", d.log.String())
	}
	_, fs = d.admin("GET", "/admin/fleet", "")
	if fs["started_from"] != "none" {
		t.Fatalf("fleet state %v", fs)
	}
	// The store comes back (empty): A re-seeds it, D applies it.
	rs.Restart()
	testutil.Eventually(t, 10*time.Second, func() bool { return d.serves("legacy") }, func() string { return "D never applied the re-seeded state\n" + d.log.String() })
}

// TestFleetShadowEvidenceIsPooled: shadow results from two replicas
// show in each replica's /admin/shadow report and mismatches.
func TestFleetShadowEvidenceIsPooled(t *testing.T) {
	rs := testutil.StartRedis(t)
	routes := fleetRoutes(t, "    shadow: {percent: 100}\n")
	fleet := startFleet(t, routes, rs.URL(), 2)
	for i := range 5 {
		if !fleet[i%2].serves("new") {
			t.Fatal("the route does not serve new")
		}
	}
	for _, r := range fleet {
		testutil.Eventually(t, 10*time.Second, func() bool {
			_, doc := r.admin("GET", "/admin/shadow", "")
			return strings.Contains(fmt.Sprint(doc), "mismatch:5")
		}, func() string {
			_, doc := r.admin("GET", "/admin/shadow", "")
			return r.name + " reports " + fmt.Sprint(doc)
		})
		// strangler shadow report -addr reads the same pooled report.
		out, err := exec.Command(buildStrangler(t), "shadow", "report", "-addr", r.Ops, "-token", fleetToken, "-json").CombinedOutput()
		var rep struct {
			Routes []struct {
				Route    string `json:"route"`
				Compared int64  `json:"compared"`
			} `json:"routes"`
		}
		if err != nil || json.Unmarshal(out, &rep) != nil || len(rep.Routes) != 1 || rep.Routes[0].Compared != 5 {
			t.Fatalf("shadow report -addr %s: %v\n%s", r.Ops, err, out)
		}
		_, doc := r.admin("GET", "/admin/shadow/course-detail/mismatches", "")
		if n := len(doc["mismatches"].([]any)); n != 5 {
			_, rep := r.admin("GET", "/admin/shadow", "")
			t.Fatalf("%s lists %d mismatches, want the fleet's 5: %v\nreport %v", r.name, n, doc, rep)
		}
	}
}
