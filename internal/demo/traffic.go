package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// sampleRequest is one request of the sample traffic, sent times times.
type sampleRequest struct {
	method, target string
	times          int
	user           string // X-User-Id: a canary cohort
	form           string
}

// sampleTraffic is a morning of the course shop in miniature: the migrated
// API, the legacy pages the clients still use (the PHP URLs, the front
// controller's ?page=, the API behind /index.php/), the login and the
// export. The same list, in the same order, every time.
var sampleTraffic = func() []sampleRequest {
	var out []sampleRequest
	add := func(r sampleRequest) { out = append(out, r) }
	add(sampleRequest{method: "GET", target: "/", times: 6})
	add(sampleRequest{method: "GET", target: "/index.php", times: 14})
	for id := 1; id <= 3; id++ {
		add(sampleRequest{method: "GET", target: fmt.Sprintf("/course.php?id=%d", id), times: 12})
		add(sampleRequest{method: "GET", target: fmt.Sprintf("/api/courses/%d", id), times: 15})
		add(sampleRequest{method: "GET", target: fmt.Sprintf("/index.php/api/courses/%d", id), times: 2})
		add(sampleRequest{method: "GET", target: fmt.Sprintf("/api/courses/%d/seats", id), times: 3})
	}
	add(sampleRequest{method: "GET", target: "/course.php?id=99", times: 4})
	add(sampleRequest{method: "GET", target: "/courses.php", times: 9})
	add(sampleRequest{method: "GET", target: "/index.php?page=courses", times: 8})
	add(sampleRequest{method: "GET", target: "/index.php?page=export&rows=100", times: 3})
	for i := 0; i < 20; i++ {
		add(sampleRequest{method: "GET", target: "/api/courses", times: 1, user: fmt.Sprintf("user-%d", i)})
	}
	add(sampleRequest{method: "POST", target: "/login", times: 5, form: "user=alice&password=demo"})
	add(sampleRequest{method: "POST", target: "/logout.php", times: 2})
	add(sampleRequest{method: "GET", target: "/whoami.php", times: 3})
	add(sampleRequest{method: "GET", target: "/export?rows=100", times: 2})
	add(sampleRequest{method: "GET", target: "/account", times: 2})
	return out
}()

// PlaySampleTraffic sends the sample traffic through the gateway, one
// request at a time, and returns how many it sent.
func (d *Demo) PlaySampleTraffic(ctx context.Context) (int, error) {
	base := "http://" + d.Gateway.PublicAddr
	if u, err := url.Parse(base); err == nil && u.Hostname() == "" {
		base = "http://127.0.0.1" + d.Gateway.PublicAddr
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	n := 0
	for _, r := range sampleTraffic {
		for i := 0; i < r.times; i++ {
			var body io.Reader
			if r.form != "" {
				body = strings.NewReader(r.form)
			}
			req, err := http.NewRequestWithContext(ctx, r.method, base+r.target, body)
			if err != nil {
				return n, err
			}
			if r.form != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if r.user != "" {
				req.Header.Set("X-User-Id", r.user)
			}
			resp, err := c.Do(req)
			if err != nil {
				return n, fmt.Errorf("sample traffic: %s %s: %w", r.method, r.target, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			n++
		}
	}
	return n, nil
}
