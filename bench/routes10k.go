package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The 10,000-route table: what a large migration's routes file costs in
// memory, scrape size and reload time, and whether memory stays flat
// across reloads. Routes are spread over 20 upstreams (all served by the
// bench backend); every other route is flipped to new, every tenth has a
// 10% canary. Load goes to every route (a wrk script walks them all), so
// the per-route series the traffic creates are in "RSS under load".

const bigTableRoutes = 10000

type bigTable struct {
	idleRSS, loadRSS     float64 // MiB
	scrapeIdle, scrapeLd int     // bytes of one /metrics scrape
	seriesIdle, seriesLd int     // sample lines of that scrape
	reloads              []time.Duration
	rssAfter             []float64 // MiB after each reload (and its load)
	loadRPS              float64
}

// bigRoutesYAML writes the table; odd generations flip a tenth of the
// routes to the other side and replace a hundred route ids with new ones,
// even ones go back: each reload keeps, changes, removes and adds routes,
// and after the first two no route or side is new, so memory must stay
// flat.
func bigRoutesYAML(dir, be string, gen int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  access_log: \"off\"\n  reload: {watch: 0s}\n  admin: {state_file: %q}\nlegacy: legacy\nupstreams:\n  legacy: {urls: [\"http://%s\"]}\n", filepath.Join(dir, "state.json"), be)
	for u := 0; u < 20; u++ {
		fmt.Fprintf(&b, "  svc%02d: {urls: [\"http://%s\"]}\n", u, be)
	}
	b.WriteString("routes:\n")
	for i := 0; i < bigTableRoutes; i++ {
		id := "r" + strconv.Itoa(i)
		if i < 100 && gen%2 == 1 {
			id = "g" + strconv.Itoa(i) // removed and added on odd reloads
		}
		side := []string{"legacy", "new"}[i%2]
		if i%10 == 0 && gen%2 == 1 {
			side = []string{"new", "legacy"}[i%2]
		}
		fmt.Fprintf(&b, "  - {id: %s, match: {path: \"/small/%s/{id}\", methods: [GET]}, side: %s, new: {upstream: svc%02d, rewrite: /small}", id, id, side, i%20)
		if i%10 == 0 && side == "legacy" {
			b.WriteString(", canary: {percent: 10}")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// bigLua makes wrk walk every route.
const bigLua = `
local i = 0
request = function()
  i = (i + 1) % 10000
  return wrk.format("GET", "/small/r" .. i .. "/1")
end
`

func measureBigTable(work, bin, be string) *bigTable {
	dir, err := os.MkdirTemp(work, "big-")
	check(err)
	cfg := filepath.Join(dir, "routes.yaml")
	check(os.WriteFile(cfg, []byte(bigRoutesYAML(dir, be, 0)), 0o644))
	addr, ops := freeAddr(), freeAddr()
	const token = "bench-admin-token-0123456789"
	cmd := exec.Command(bin, "serve", "-config", cfg, "-listen", addr, "-operator-listen", ops, "-log-level", "warn")
	cmd.Env = append(os.Environ(), "STRANGLER_ADMIN_TOKEN="+token)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Start())
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	pid := cmd.Process.Pid
	waitUp(addr)
	waitUp(ops)
	bt := &bigTable{}
	time.Sleep(2 * time.Second) // settle: the start's garbage collected
	bt.idleRSS = rssMiB(pid)
	bt.scrapeIdle, bt.seriesIdle = scrape(ops)
	lua := filepath.Join(dir, "walk.lua")
	check(os.WriteFile(lua, []byte(bigLua), 0o644))
	d := *duration
	load := func() float64 {
		outb, err := exec.Command("wrk", "-t1", "-c64", "-d"+fmt.Sprintf("%.0fs", d.Seconds()), "-s", lua, "http://"+addr).CombinedOutput()
		if err != nil {
			log.Fatalf("wrk: %v\n%s", err, outb)
		}
		for _, l := range strings.Split(string(outb), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Requests/sec:"); ok {
				f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				return f
			}
		}
		return 0
	}
	bt.loadRPS = load()
	bt.loadRSS = rssMiB(pid)
	bt.scrapeLd, bt.seriesLd = scrape(ops)
	for gen := 1; gen <= 5; gen++ {
		check(os.WriteFile(cfg, []byte(bigRoutesYAML(dir, be, gen)), 0o644))
		req, _ := http.NewRequest("POST", "http://"+ops+"/admin/reload", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		check(err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bt.reloads = append(bt.reloads, time.Since(t0))
		if resp.StatusCode != 200 {
			log.Fatalf("reload %d: %d %s", gen, resp.StatusCode, body)
		}
		load()
		time.Sleep(time.Second)
		bt.rssAfter = append(bt.rssAfter, rssMiB(pid))
	}
	log.Printf("10k routes: idle RSS %.1f MiB, scrape %d B (%d series); under load %.1f MiB, %d B (%d series); reloads %v; RSS after reloads %v",
		bt.idleRSS, bt.scrapeIdle, bt.seriesIdle, bt.loadRSS, bt.scrapeLd, bt.seriesLd, bt.reloads, bt.rssAfter)
	return bt
}

// rssMiB is pid's resident set, in MiB.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// scrape fetches /metrics and returns its size and its sample lines.
func scrape(ops string) (int, int) {
	resp, err := http.Get("http://" + ops + "/metrics")
	check(err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	check(err)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && l[0] != '#' {
			n++
		}
	}
	return len(b), n
}

func renderBigTable(b *strings.Builder, bt *bigTable) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d.Microseconds())/1000) }
	var rl []string
	maxR := time.Duration(0)
	for _, d := range bt.reloads {
		rl = append(rl, ms(d))
		maxR = max(maxR, d)
	}
	var ra []string
	for _, v := range bt.rssAfter {
		ra = append(ra, fmt.Sprintf("%.1f", v))
	}
	fmt.Fprintf(b, "## %d routes\n\n", bigTableRoutes)
	fmt.Fprintf(b, "One process, the table of `bigRoutesYAML` in bench/routes10k.go (20 upstreams, half the routes on new, a tenth with a canary). "+
		"Load: `wrk -t1 -c64 -d%s` walking every route. Odd reloads flip a tenth of the routes to the other side and swap a hundred route ids "+
		"for new ones (their series must go), even reloads go back; the same load runs after each.\n\n", *duration)
	b.WriteString("| measure | value | target |\n|---|---:|---|\n")
	fmt.Fprintf(b, "| idle RSS | %.1f MiB | ≤ 48 MiB |\n", bt.idleRSS)
	fmt.Fprintf(b, "| idle `/metrics` scrape | %.1f KB, %d samples | ≤ 200 KB |\n", float64(bt.scrapeIdle)/1000, bt.seriesIdle)
	fmt.Fprintf(b, "| RSS under load (every route seen) | %.1f MiB (%.0f req/s) | |\n", bt.loadRSS, bt.loadRPS)
	fmt.Fprintf(b, "| `/metrics` scrape after load | %.1f KB, %d samples | |\n", float64(bt.scrapeLd)/1000, bt.seriesLd)
	fmt.Fprintf(b, "| reload time (each of 5, ms) | %s (max %s ms) | ≤ 500 ms |\n", strings.Join(rl, ", "), ms(maxR))
	fmt.Fprintf(b, "| RSS after each reload and its load (MiB) | %s | |\n", strings.Join(ra, ", "))
	if len(bt.rssAfter) == 5 {
		fmt.Fprintf(b, "| RSS after 5 reloads ÷ after the first | %.2f | within 10%% (0.90..1.10) |\n", bt.rssAfter[4]/bt.rssAfter[0])
	}
	b.WriteString("\n")
}
