// Package demo runs strangler's demo: a sample legacy monolith, a sample new
// service that reimplements part of it, and the gateway in front of both, all
// in one process on loopback.
package demo

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/strangler/strangler/legacy-adapter/legacyadaptertest"
)

// CourseService is the sample new service: the course catalogue rewritten
// in Go, answering /v2/courses, /v2/courses/{id} and
// /v2/courses/{id}/seats. It differs from the
// legacy monolith on purpose in one place: it renders currencies in lower
// case ("eur"), the kind of difference shadow comparison exists to catch.
// It answers a missing course with an honest 404.
type CourseService struct {
	// Fail makes every request answer 503 (an unhealthy service).
	Fail atomic.Bool
	// Down makes every request drop its connection unanswered (a crashed
	// service), the failure fallback: legacy covers.
	Down atomic.Bool
	// Requests counts requests served.
	Requests atomic.Int64
	Now      func() time.Time
}

// NewCourseService returns the sample new service.
func NewCourseService() *CourseService { return &CourseService{Now: time.Now} }

type course struct {
	ID        int    `json:"id"`
	Title     string `json:"title"`
	Price     price  `json:"price"`
	Seats     int    `json:"seats"`
	Author    string `json:"author"`
	UpdatedAt string `json:"updated_at"`
}

type price struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

func (s *CourseService) view(c legacyadaptertest.Course) course {
	return course{
		ID: c.ID, Title: c.Title, Seats: c.Seats, Author: c.Author,
		// The deliberate difference: lower-case currency codes.
		Price:     price{Amount: c.Price.Amount, Currency: strings.ToLower(c.Price.Currency)},
		UpdatedAt: s.Now().UTC().Format(time.RFC3339),
	}
}

// ServeHTTP implements http.Handler.
func (s *CourseService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_demo/") {
		s.control(w, r)
		return
	}
	s.Requests.Add(1)
	if s.Down.Load() {
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, as from a dead process
			}
			_ = c.Close()
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if s.Fail.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"unavailable"}` + "\n"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write([]byte(`{"error":"method_not_allowed"}` + "\n"))
		return
	}
	switch {
	case r.URL.Path == "/v2/me":
		// The gateway verified the token and says who this is; the new
		// service trusts that and never sees the token itself.
		user := r.Header.Get("X-User-Id")
		if user == "" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"no identity"}` + "\n"))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"user": user, "roles": splitComma(r.Header.Get("X-User-Roles")),
			"token_seen": r.Header.Get("Authorization") != ""})
	case r.URL.Path == "/v2/courses":
		out := make([]course, 0, len(legacyadaptertest.Catalogue))
		for _, c := range legacyadaptertest.Catalogue {
			out = append(out, s.view(c))
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"courses": out})
	case strings.HasPrefix(r.URL.Path, "/v2/courses/") && strings.HasSuffix(r.URL.Path, "/seats"):
		// Seat availability: the same answer as legacy's /seats.php.
		id, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v2/courses/"), "/seats"))
		for _, c := range legacyadaptertest.Catalogue {
			if err == nil && c.ID == id {
				_ = json.NewEncoder(w).Encode(legacyadaptertest.Seats{Course: c.ID, Seats: c.Seats, Available: c.Seats > 0})
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not_found","message":"course not found"}` + "\n"))
	case strings.HasPrefix(r.URL.Path, "/v2/courses/"):
		id, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/v2/courses/"))
		for _, c := range legacyadaptertest.Catalogue {
			if err == nil && c.ID == id {
				_ = json.NewEncoder(w).Encode(s.view(c))
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not_found","message":"course not found"}` + "\n"))
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not_found"}` + "\n"))
	}
}

// control switches the demo's failure modes: POST /_demo/down (drop every
// connection), /_demo/fail (answer 503) and /_demo/up (healthy). It is
// served on the service's own address, never through the gateway.
func (s *CourseService) control(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/_demo/down":
		s.Down.Store(true)
		s.Fail.Store(false)
	case "/_demo/fail":
		s.Fail.Store(true)
		s.Down.Store(false)
	case "/_demo/up":
		s.Down.Store(false)
		s.Fail.Store(false)
	default:
		http.NotFound(w, r)
		return
	}
	_, _ = io.WriteString(w, "new service: "+strings.TrimPrefix(r.URL.Path, "/_demo/")+"\n")
}
