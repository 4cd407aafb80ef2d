// Command bench measures strangler side by side with the proxies users
// would otherwise pick (nginx, haproxy), with the floor these libraries
// allow (bench/floor: a bare fasthttp.Server + fasthttp.HostClient proxy
// with no features) and with no proxy at all, on loopback, interleaved,
// and writes bench/RESULTS.md. It also loads a 10,000-route table and
// measures its memory, its /metrics scrape and its reloads
// (bench/routes10k.go).
//
//	go run ./bench                          # full run (about 15 minutes)
//	go run ./bench -quick                   # smoke run: seconds, no RESULTS.md
//	go run ./bench -only floor,strangler    # some targets ("routes10k": the big table)
//	go run ./bench -baseline HEAD~3         # an older build beside this one
//
// It installs nginx, haproxy and wrk from Debian's packages when they are
// missing and it runs as root, builds strangler and the floor from this
// checkout, and starts its own backend (GET /small and /small/...: a
// 213-byte JSON; GET /big?bytes=N: a streamed body; POST /echo: reads the
// body, answers its length).
//
// TLS is measured too: nginx and strangler terminating HTTPS (the same
// self-signed ECDSA P-256 certificate, generated per run; plain HTTP to the
// backend), on keep-alive connections and with a new connection, so a full
// handshake, per request ("Connection: close").
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	quick    = flag.Bool("quick", false, "smoke run: one short round, c64 only, small streams; prints, writes nothing")
	rounds   = flag.Int("rounds", 3, "interleaved rounds (medians are reported)")
	duration = flag.Duration("d", 5*time.Second, "wrk duration per measurement")
	out      = flag.String("out", "bench/RESULTS.md", "results file (full runs)")
	bigBytes = flag.Int64("big", 2<<30, "streamed response size")
	upBytes  = flag.Int64("upload", 512<<20, "streamed upload size")
	baseline = flag.String("baseline", "", "git revision of strangler to measure beside this checkout (plain config), e.g. a commit before a change")
	only     = flag.String("only", "", "comma-separated target names to run (default: all)")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *quick {
		*rounds, *duration, *bigBytes, *upBytes = 1, time.Second, 64<<20, 32<<20
	}
	ensureTools()
	loadAtStart := loadNote()
	work, err := os.MkdirTemp("", "strangler-bench-")
	check(err)
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "strangler")
	run("go", "build", "-o", bin, "./cmd/strangler")
	floorBin := filepath.Join(work, "floor")
	run("go", "build", "-o", floorBin, "./bench/floor")

	be := startBackend()
	shadowBE := startBackend()
	conc := []int{64, 256}
	if *quick {
		conc = []int{64}
	}
	cert, key := selfSigned(work)
	targets := []*target{
		{name: "direct", start: func() (string, int, func()) { return be, 0, func() {} }},
		{name: "floor", start: func() (string, int, func()) { return startFloor(floorBin, be) }},
		{name: "floor + timeouts", start: func() (string, int, func()) { return startFloor(floorBin, be, "-timeouts") }},
		{name: "nginx", start: func() (string, int, func()) { return startNginx(work, be, false) }},
		{name: "nginx + access log", start: func() (string, int, func()) { return startNginx(work, be, true) }},
		{name: "haproxy", start: func() (string, int, func()) { return startHAProxy(work, be) }},
		{name: "strangler", start: func() (string, int, func()) { return startStrangler(work, bin, be, "plain") }},
		{name: "strangler, inventory off", start: func() (string, int, func()) { return startStrangler(work, bin, be, "noinventory") }},
		{name: "strangler + access log", start: func() (string, int, func()) { return startStrangler(work, bin, be, "log") }},
		{name: "strangler + JWT", header: "Authorization: Bearer " + benchToken(), start: func() (string, int, func()) { return startStrangler(work, bin, be, "jwt") }},
		{name: "strangler + shadow 100%", start: func() (string, int, func()) { return startStrangler(work, bin, be, "shadow:"+shadowBE) }},
		// Fleet mode: overrides and evidence in a real redis-server
		// (docs/fleet.md) against the file store of the plain row.
		{name: "strangler + fleet store", start: func() (string, int, func()) { return startStrangler(work, bin, be, "fleet:"+redisAddr()) }},
		{name: "nginx TLS", tls: true, start: func() (string, int, func()) { return startNginxTLS(work, be, cert, key) }},
		{name: "strangler TLS", tls: true, start: func() (string, int, func()) { return startStrangler(work, bin, be, "tls:"+cert+":"+key) }},
		{name: "nginx TLS handshake per request", tls: true, header: "Connection: close", start: func() (string, int, func()) { return startNginxTLS(work, be, cert, key) }},
		{name: "strangler TLS handshake per request", tls: true, header: "Connection: close", start: func() (string, int, func()) { return startStrangler(work, bin, be, "tls:"+cert+":"+key) }},
	}
	if *baseline != "" {
		base := buildRevision(work, *baseline)
		targets = append(targets, &target{name: "strangler @" + *baseline, start: func() (string, int, func()) { return startStrangler(work, base, be, "plain") }})
	}
	wantBig := *only == "" || slices.Contains(strings.Split(*only, ","), "routes10k")
	if *only != "" {
		keep := strings.Split(*only, ",")
		if *baseline != "" {
			keep = append(keep, "strangler @"+*baseline)
		}
		targets = slices.DeleteFunc(targets, func(t *target) bool { return !slices.Contains(keep, t.name) })
	}
	for _, t := range targets {
		t.addr, t.pid, t.stop = t.start()
		waitUp(t.addr)
	}
	defer func() {
		for _, t := range targets {
			t.stop()
		}
		if redisStop != nil {
			redisStop()
		}
	}()
	lua := filepath.Join(work, "report.lua")
	check(os.WriteFile(lua, []byte(luaReport), 0o644))
	for r := 1; r <= *rounds; r++ {
		for _, c := range conc {
			for _, t := range targets { // interleaved: A B C ... each round
				s := measure(t, c, lua)
				t.samples = append(t.samples, s)
				log.Printf("round %d c%d %-24s %8.0f req/s p99 %6.2f ms cpu %5.1f µs/req", r, c, t.name, s.rps, s.p99, s.cpu)
			}
		}
	}
	// Streaming: a fresh process each, so peak RSS is the transfer's.
	for _, t := range targets {
		if strings.Contains(t.name, " + ") || strings.Contains(t.name, ", ") || t.tls {
			continue // streaming is measured on the plain variants
		}
		t.stop()
		t.addr, t.pid, t.stop = t.start()
		waitUp(t.addr)
		t.down, t.downRSS = stream(t, "GET", *bigBytes)
		t.stop()
		t.addr, t.pid, t.stop = t.start()
		waitUp(t.addr)
		t.up, t.upRSS = stream(t, "POST", *upBytes)
		log.Printf("stream %-24s download %.2fs (peak RSS %.1f MiB) upload %.2fs (peak RSS %.1f MiB)", t.name, t.down.Seconds(), t.downRSS, t.up.Seconds(), t.upRSS)
	}
	var bt *bigTable
	if wantBig {
		for _, t := range targets {
			t.stop() // alone on the machine with the backend
			t.stop = func() {}
		}
		bt = measureBigTable(work, bin, be)
	}
	load := loadNote()
	report := render(targets, conc, bt, loadAtStart, load)
	fmt.Print(report)
	if !*quick {
		check(os.WriteFile(*out, []byte(report+goBenchmarks()), 0o644))
		log.Printf("wrote %s", *out)
	}
}

type sample struct {
	c                   int
	rps, p50, p99, p999 float64 // ms
	cpu                 float64 // proxy CPU µs per request
	errors              int
}

type target struct {
	name, header   string
	tls            bool // HTTPS to the target (its own table, beside nginx TLS)
	start          func() (string, int, func())
	addr           string
	pid            int
	stop           func()
	samples        []sample
	down, up       time.Duration
	downRSS, upRSS float64
}

const luaReport = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    e.connect + e.read + e.write + e.timeout + e.status))
end
`

func measure(t *target, c int, lua string) sample {
	args := []string{"-t1", "-c" + strconv.Itoa(c), "-d" + fmt.Sprintf("%.0fs", duration.Seconds()), "-s", lua}
	if t.header != "" {
		args = append(args, "-H", t.header)
	}
	scheme := "http://"
	if t.tls {
		scheme = "https://"
	}
	args = append(args, scheme+t.addr+"/small")
	cpu0 := procCPU(t.pid)
	outb, err := exec.Command("wrk", args...).CombinedOutput()
	cpu1 := procCPU(t.pid)
	if err != nil {
		log.Fatalf("wrk %v: %v\n%s", args, err, outb)
	}
	var s sample
	s.c = c
	for _, line := range strings.Split(string(outb), "\n") {
		var reqs, durUS, p50, p99, p999 int64
		if n, _ := fmt.Sscanf(line, "BENCH %d %d %d %d %d %d", &reqs, &durUS, &p50, &p99, &p999, &s.errors); n == 6 {
			s.rps = float64(reqs) / (float64(durUS) / 1e6)
			s.p50, s.p99, s.p999 = float64(p50)/1000, float64(p99)/1000, float64(p999)/1000
			if t.pid != 0 && reqs > 0 {
				s.cpu = (cpu1 - cpu0) * 1e6 / float64(reqs)
			}
		}
	}
	if s.rps == 0 {
		log.Fatalf("no wrk report for %s:\n%s", t.name, outb)
	}
	if s.errors > 0 {
		log.Printf("warning: %s c%d: %d errors or non-2xx responses", t.name, c, s.errors)
	}
	return s
}

// procCPU is utime+stime in seconds of pid and its children processes
// (nginx and haproxy workers).
func procCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	ticks := 0.0
	for _, p := range procTree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		ticks += ut + st
	}
	return ticks / 100 // USER_HZ
}

func procTree(pid int) []int {
	out := []int{pid}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		if pp, _ := strconv.Atoi(f[1]); pp == pid {
			out = append(out, p)
		}
	}
	return out
}

// peakRSS is the largest VmHWM among pid's processes, in MiB.
func peakRSS(pid int) float64 {
	best := 0.0
	for _, p := range procTree(pid) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				best = max(best, kb/1024)
			}
		}
		f.Close()
	}
	return best
}

type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := int64(len(p))
	if k > z.n {
		k = z.n
	}
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

// stream moves n bytes through t (a download or an upload) and returns the
// time and the proxy's peak RSS.
func stream(t *target, method string, n int64) (time.Duration, float64) {
	cl := &http.Client{Timeout: 5 * time.Minute}
	var req *http.Request
	if method == "GET" {
		req, _ = http.NewRequest("GET", "http://"+t.addr+"/big?bytes="+strconv.FormatInt(n, 10), nil)
	} else {
		req, _ = http.NewRequest("POST", "http://"+t.addr+"/echo", &zeros{n})
		req.ContentLength = n
	}
	start := time.Now()
	resp, err := cl.Do(req)
	if err != nil {
		log.Fatalf("%s %s: %v", t.name, method, err)
	}
	got, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		log.Fatalf("%s %s after %d bytes: %v", t.name, method, got, err)
	}
	d := time.Since(start)
	if method == "GET" && got != n || resp.StatusCode != 200 {
		log.Fatalf("%s %s: status %d, %d bytes (want %d)", t.name, method, resp.StatusCode, got, n)
	}
	return d, peakRSS(t.pid)
}

func startBackend() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	small := []byte(`{"id":1,"title":"Strangler-fig migrations","price":{"amount":"49.00","currency":"EUR"},"seats":30,"author":"M. Fowler","tags":["migration","legacy"],"updated_at":"2026-11-23T10:00:00Z","ok":true}`)
	buf := make([]byte, 64<<10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch path := r.URL.Path; {
		case path == "/small" || strings.HasPrefix(path, "/small/"):
			w.Header().Set("Content-Type", "application/json")
			w.Write(small)
		case path == "/big":
			n, _ := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			io.CopyBuffer(w, &zeros{n}, buf)
		case path == "/echo":
			n, _ := io.Copy(io.Discard, r.Body) // read first, then answer
			fmt.Fprintf(w, "%d\n", n)
		default:
			http.NotFound(w, r)
		}
	})
	go (&http.Server{Handler: h}).Serve(ln)
	return ln.Addr().String()
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	return ln.Addr().String()
}

// redis is the fleet row's store, started once on first use and stopped
// with the harness.
var (
	redisOnce sync.Once
	redisHost string
	redisStop func()
)

// redisAddr starts a redis-server on a free loopback port (no persistence)
// and returns its address.
func redisAddr() string {
	redisOnce.Do(func() {
		redisHost = freeAddr()
		_, port, _ := net.SplitHostPort(redisHost)
		_, redisStop = startProc("redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no")
		waitUp(redisHost)
	})
	return redisHost
}

func startProc(name string, args ...string) (int, func()) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Start())
	return cmd.Process.Pid, func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
}

func startNginx(work, be string, accessLog bool) (string, int, func()) {
	return startNginxWith(work, be, accessLog, "")
}

// startNginxWith is nginx as a reverse proxy to be; listen is appended to
// its listen directive (" ssl;\n    ssl_certificate ..." for TLS).
func startNginxWith(work, be string, accessLog bool, listen string) (string, int, func()) {
	addr := freeAddr()
	dir, err := os.MkdirTemp(work, "nginx-")
	check(err)
	// Workers run as an unprivileged user when the master is root: they
	// must be able to write proxy temp files here.
	check(os.Chmod(work, 0o755))
	check(os.Chmod(dir, 0o777))
	conf := fmt.Sprintf(`worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  %[4]s
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  upstream backend { server %[2]s; keepalive 256; }
  server {
    listen %[3]s%[5]s;
    client_max_body_size 0;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_request_buffering off;
    }
  }
}
`, dir, be, addr, map[bool]string{true: "access_log " + dir + "/access.log;", false: "access_log off;"}[accessLog], listen)
	check(os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644))
	pid, stop := startProc("nginx", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	return addr, pid, stop
}

func startFloor(bin, be string, args ...string) (string, int, func()) {
	addr := freeAddr()
	pid, stop := startProc(bin, append([]string{"-listen", addr, "-upstream", be}, args...)...)
	return addr, pid, stop
}

func startHAProxy(work, be string) (string, int, func()) {
	addr := freeAddr()
	dir, err := os.MkdirTemp(work, "haproxy-")
	check(err)
	conf := fmt.Sprintf(`global
  maxconn 5000
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind %s
  default_backend be
backend be
  http-reuse always
  server s1 %s
`, addr, be)
	check(os.WriteFile(filepath.Join(dir, "haproxy.cfg"), []byte(conf), 0o644))
	pid, stop := startProc("haproxy", "-f", filepath.Join(dir, "haproxy.cfg"))
	return addr, pid, stop
}

const benchSecret = "bench-secret-0123456789abcdef-0123456789"

// benchToken is an HS256 token for the JWT variant, valid for a day.
func benchToken() string {
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	p := enc.EncodeToString([]byte(fmt.Sprintf(`{"sub":"bench","roles":["student"],"exp":%d}`, time.Now().Add(24*time.Hour).Unix())))
	m := hmac.New(sha256.New, []byte(benchSecret))
	m.Write([]byte(h + "." + p))
	return h + "." + p + "." + enc.EncodeToString(m.Sum(nil))
}

// buildRevision builds strangler at a git revision (in a temporary
// worktree) and returns the binary.
func buildRevision(work, rev string) string {
	dir := filepath.Join(work, "baseline-src")
	run("git", "worktree", "add", "--detach", dir, rev)
	defer run("git", "worktree", "remove", "--force", dir)
	bin := filepath.Join(work, "strangler-baseline")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/strangler")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Run())
	return bin
}

func startStrangler(work, bin, be, variant string) (string, int, func()) {
	addr, ops := freeAddr(), freeAddr()
	dir, err := os.MkdirTemp(work, "strangler-")
	check(err)
	secret := filepath.Join(dir, "secret")
	check(os.WriteFile(secret, []byte(benchSecret), 0o600))
	accessLog := `"off"`
	if variant == "log" {
		accessLog = strconv.Quote(filepath.Join(dir, "access.log"))
	}
	y := fmt.Sprintf(`server:
  access_log: `+accessLog+`
  reload: {watch: 0s}
  admin: {state_file: %q}
  limits: {max_body_bytes: unlimited}
legacy: legacy
upstreams:
  legacy: {urls: ["http://%s"]}
`, filepath.Join(dir, "state.json"), be)
	if rest, ok := strings.CutPrefix(variant, "tls:"); ok {
		cert, key, _ := strings.Cut(rest, ":")
		y = strings.Replace(y, "server:\n", fmt.Sprintf("server:\n  tls: {certificates: [{cert: %q, key: %q}], reload: 0s}\n", cert, key), 1)
	}
	if rest, ok := strings.CutPrefix(variant, "fleet:"); ok {
		y = strings.Replace(y, "server:\n", fmt.Sprintf("server:\n  store: redis://%s/0\n", rest), 1)
	}
	switch {
	case variant == "noinventory":
		y += "inventory: {enabled: false}\n"
	case variant == "jwt":
		y += fmt.Sprintf("plugins:\n  - jwt: {issuers: [{hmac_secret_file: %q}], forward: {sub: X-User-Id, roles: X-User-Roles}}\n", secret)
	case strings.HasPrefix(variant, "shadow:"):
		y += fmt.Sprintf(`  shadowed: {urls: ["http://%s"]}
shadow: {workers: 2, queue: 1000}
routes:
  - id: small
    match: {prefix: /small}
    side: legacy
    new: {upstream: shadowed}
    shadow: {percent: 100, key: [header:X-None]}
`, strings.TrimPrefix(variant, "shadow:"))
	}
	cfg := filepath.Join(dir, "routes.yaml")
	check(os.WriteFile(cfg, []byte(y), 0o644))
	pid, stop := startProc(bin, "serve", "-config", cfg, "-listen", addr, "-operator-listen", ops, "-log-level", "warn")
	return addr, pid, stop
}

func waitUp(addr string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatalf("%s did not come up", addr)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pairedRatio is the median over rounds of t's value divided by ref's in
// the same round.
func pairedRatio(t, ref *target, c int, f func(sample) float64) float64 {
	var r []float64
	var ts, rs []sample
	for _, s := range t.samples {
		if s.c == c {
			ts = append(ts, s)
		}
	}
	for _, s := range ref.samples {
		if s.c == c {
			rs = append(rs, s)
		}
	}
	for i := range min(len(ts), len(rs)) {
		if f(rs[i]) > 0 {
			r = append(r, f(ts[i])/f(rs[i]))
		}
	}
	return median(r)
}

func medianOf(t *target, c int, f func(sample) float64) float64 {
	var v []float64
	for _, s := range t.samples {
		if s.c == c {
			v = append(v, f(s))
		}
	}
	return median(v)
}

// loadNote is the load average, for the report: the machine is shared.
func loadNote() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func byName(ts []*target, name string) *target {
	for _, t := range ts {
		if t.name == name {
			return t
		}
	}
	return nil
}

func render(ts []*target, conc []int, bt *bigTable, loadStart, loadEnd string) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# strangler benchmarks\n\nRun %s on %s: %d CPUs (shared by wrk, the proxy and the backend: every figure is contention-bound; read the ratios), %s, Go %s.\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), strings.TrimSpace(string(must(exec.Command("uname", "-sr").Output()))), strings.TrimPrefix(runtime.Version(), "go"))
	fmt.Fprintf(&b, "Load average (1, 5, 15 min) at the start: %s; at the end: %s (the machine is shared with other work: absolute figures move, paired ratios much less).\n", loadStart, loadEnd)
	fmt.Fprintf(&b, "Tools: %s; %s; %s.\n\n", firstLine("nginx", "-v"), firstLine("haproxy", "-v"), firstLine("wrk", "-v"))
	fmt.Fprintf(&b, "Command: `go run ./bench` (%d interleaved rounds of `wrk -t1 -cC -d%s --latency` on `GET /small` per target, medians; ratios are paired per round: each round's value divided by the reference's in the same round, then the median). "+
		"The **floor** is bench/floor: `fasthttp.Server` + `fasthttp.HostClient`, streaming on, no features: what these libraries cost. Not pinned: the two cores are shared as they would be in production.\n\n", *rounds, *duration)
	var tlsTargets []*target
	ts = slices.DeleteFunc(slices.Clone(ts), func(t *target) bool {
		if t.tls {
			tlsTargets = append(tlsTargets, t)
		}
		return t.tls
	})
	floor, nginx, direct, plain := byName(ts, "floor"), byName(ts, "nginx"), byName(ts, "direct"), byName(ts, "strangler")
	ratio := func(t, ref *target, c int, f func(sample) float64) string {
		if ref == nil {
			return "–"
		}
		r := pairedRatio(t, ref, c, f)
		if r == 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			return "–" // no CPU figure for direct
		}
		return fmt.Sprintf("%.2f", r)
	}
	rps := func(s sample) float64 { return s.rps }
	p99 := func(s sample) float64 { return s.p99 }
	cpuOf := func(s sample) float64 { return s.cpu }
	for _, c := range conc {
		fmt.Fprintf(&b, "## %d connections\n\n| target | req/s | ×floor | ×nginx | ×direct | p50 ms | p99 ms | p99 ×floor | p99.9 ms | proxy CPU µs/req | CPU ×floor | CPU ×nginx |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n", c)
		for _, t := range ts {
			cpu := "–"
			if t.pid != 0 {
				cpu = fmt.Sprintf("%.1f", medianOf(t, c, cpuOf))
			}
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %.2f | %.2f | %s | %.2f | %s | %s | %s |\n", t.name,
				medianOf(t, c, rps), ratio(t, floor, c, rps), ratio(t, nginx, c, rps), ratio(t, direct, c, rps),
				medianOf(t, c, func(s sample) float64 { return s.p50 }), medianOf(t, c, p99), ratio(t, floor, c, p99),
				medianOf(t, c, func(s sample) float64 { return s.p999 }), cpu, ratio(t, floor, c, cpuOf), ratio(t, nginx, c, cpuOf))
		}
		b.WriteString("\n")
	}
	if plain != nil {
		b.WriteString("## What each feature costs (paired with the plain route, same round)\n\n| variant | connections | req/s ×plain | p99 ×plain | CPU/req ×plain |\n|---|---:|---:|---:|---:|\n")
		for _, t := range ts {
			if !strings.HasPrefix(t.name, "strangler ") {
				continue
			}
			for _, c := range conc {
				fmt.Fprintf(&b, "| %s | %d | %.2f | %.2f | %.2f |\n", t.name, c, pairedRatio(t, plain, c, rps), pairedRatio(t, plain, c, p99), pairedRatio(t, plain, c, cpuOf))
			}
		}
		b.WriteString("\n")
	}
	if on, off := byName(ts, "strangler"), byName(ts, "strangler, inventory off"); on != nil && off != nil {
		// The legacy inventory observes every request (docs/inventory.md):
		// its cost is strangler with it (the default) against without.
		b.WriteString("## The inventory's cost on the request path\n\n`strangler` (inventory on, the default) against `strangler, inventory off`, paired per round.\n\n| connections | proxy CPU µs/req on | off | CPU ×off | req/s ×off |\n|---:|---:|---:|---:|---:|\n")
		cpu := func(s sample) float64 { return s.cpu }
		for _, c := range conc {
			fmt.Fprintf(&b, "| %d | %.1f | %.1f | %.3f | %.3f |\n", c, medianOf(on, c, cpu), medianOf(off, c, cpu),
				pairedRatio(on, off, c, cpu), pairedRatio(on, off, c, func(s sample) float64 { return s.rps }))
		}
		b.WriteString("\n")
	}
	b.WriteString(renderTLS(tlsTargets, conc))
	fmt.Fprintf(&b, "## Streaming (one transfer each, a fresh proxy process for each)\n\n| target | %d MiB download s | MiB/s | peak RSS MiB | %d MiB upload s | MiB/s | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|\n", *bigBytes>>20, *upBytes>>20)
	for _, t := range ts {
		if t.down == 0 {
			continue
		}
		rss := func(v float64) string {
			if t.pid == 0 {
				return "– (backend)"
			}
			return fmt.Sprintf("%.1f", v)
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.0f | %s | %.2f | %.0f | %s |\n", t.name, t.down.Seconds(), float64(*bigBytes>>20)/t.down.Seconds(), rss(t.downRSS),
			t.up.Seconds(), float64(*upBytes>>20)/t.up.Seconds(), rss(t.upRSS))
	}
	b.WriteString("\n")
	if bt != nil {
		renderBigTable(&b, bt)
	}
	return b.String()
}

// goBenchmarks runs the hot-path Go benchmarks and returns them as a
// section.
func goBenchmarks() string {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "Match|RequestPath|Verify|JSONCompare|ProxySmall|StreamDownload|Observe|Floor|Parse10k", "-benchmem", "-benchtime", "1s", "-count", "3",
		"./compile", "./plugins/jwtauth", "./test", "./inventory")
	outb, err := cmd.CombinedOutput()
	if err != nil {
		return "## Go benchmarks\n\nfailed: " + err.Error() + "\n\n```\n" + string(outb) + "```\n"
	}
	var keep []string
	for _, l := range strings.Split(string(outb), "\n") {
		if strings.HasPrefix(l, "Benchmark") {
			keep = append(keep, l)
		}
	}
	return "## Go benchmarks (hot paths)\n\n`go test -run '^$' -bench 'Match|RequestPath|Verify|JSONCompare|ProxySmall|StreamDownload|Observe|Floor|Parse10k' -benchmem -count 3 ./compile ./plugins/jwtauth ./test ./inventory` (BenchmarkFloor: cpu-ns/op is the whole process's CPU per request, client and upstream included, so the floor/gateway difference is the gateway's own cost)\n\n```\n" + strings.Join(keep, "\n") + "\n```\n"
}

func firstLine(name string, args ...string) string {
	o, _ := exec.Command(name, args...).CombinedOutput()
	l, _, _ := strings.Cut(strings.TrimSpace(string(o)), "\n")
	return l
}

func ensureTools() {
	var missing []string
	for _, t := range []string{"nginx", "haproxy", "wrk", "redis-server"} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Geteuid() != 0 {
		log.Fatalf("missing %v: install them (apt-get install %s) or run as root", missing, strings.Join(missing, " "))
	}
	log.Printf("installing %v from Debian's packages", missing)
	run("apt-get", "update", "-qq")
	run("apt-get", append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)...)
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if err := cmd.Run(); err != nil {
		log.Fatalf("%s %v: %v", name, args, err)
	}
}

func must[T any](v T, _ error) T { return v }

func check(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// renderTLS is the TLS table: each HTTPS target beside nginx with the same
// certificate and the same connection reuse.
func renderTLS(ts []*target, conc []int) string {
	if len(ts) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("## TLS (HTTPS to the proxy, plain HTTP to the backend)\n\nThe same self-signed ECDSA P-256 certificate, TLS 1.2 or 1.3 as negotiated (both offer 1.3), Go's and nginx's default ciphers. Keep-alive rows reuse each connection; the \"handshake per request\" rows send `Connection: close`, so every request pays a full handshake. Ratios are against nginx in the same mode.\n\n")
	ref := func(t *target) *target {
		for _, r := range ts {
			if strings.HasPrefix(r.name, "nginx") && r.header == t.header {
				return r
			}
		}
		return t
	}
	for _, c := range conc {
		fmt.Fprintf(&b, "### %d connections\n\n| target | req/s | ×nginx TLS | p50 ms | p99 ms | proxy CPU µs/req | CPU ×nginx TLS |\n|---|---:|---:|---:|---:|---:|---:|\n", c)
		for _, t := range ts {
			r := ref(t)
			fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.2f | %.2f | %.1f | %.2f |\n", t.name,
				medianOf(t, c, func(s sample) float64 { return s.rps }),
				pairedRatio(t, r, c, func(s sample) float64 { return s.rps }),
				medianOf(t, c, func(s sample) float64 { return s.p50 }),
				medianOf(t, c, func(s sample) float64 { return s.p99 }),
				medianOf(t, c, func(s sample) float64 { return s.cpu }),
				pairedRatio(t, r, c, func(s sample) float64 { return s.cpu }))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// selfSigned writes a self-signed ECDSA P-256 certificate for 127.0.0.1
// and localhost into work and returns the certificate and key files.
func selfSigned(work string) (string, string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	check(err)
	kb, err := x509.MarshalECPrivateKey(k)
	check(err)
	cert, key := filepath.Join(work, "tls.crt"), filepath.Join(work, "tls.key")
	check(os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	check(os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o644))
	return cert, key
}

// startNginxTLS is nginx terminating TLS with cert and key (its defaults:
// TLS 1.2 and 1.3, session tickets on).
func startNginxTLS(work, be, cert, key string) (string, int, func()) {
	return startNginxWith(work, be, false, fmt.Sprintf(" ssl;\n    ssl_certificate %s;\n    ssl_certificate_key %s;\n    ssl_protocols TLSv1.2 TLSv1.3", cert, key))
}
