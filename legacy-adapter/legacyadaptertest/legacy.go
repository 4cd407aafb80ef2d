// Package legacyadaptertest is a sample legacy monolith, the kind strangler
// sits in front of: PHP-era URLs (/course.php?id=7), a PHPSESSID session
// cookie, an error envelope returned with status 200, HTML error pages, and a
// CSV export that streams tens of thousands of rows. The demo serves it and
// the tests run against it.
package legacyadaptertest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	legacyadapter "github.com/strangler/strangler/legacy-adapter"
)

// Course is one course of the sample catalogue.
type Course struct {
	ID     int    `json:"id"`
	Title  string `json:"title"`
	Price  Price  `json:"price"`
	Seats  int    `json:"seats"`
	Author string `json:"author"`
}

// Price is a price as the legacy system renders it: the amount as a string.
type Price struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// Catalogue is the sample data both demo services serve.
var Catalogue = []Course{
	{ID: 1, Title: "Strangler-fig migrations", Price: Price{"49.00", "EUR"}, Seats: 30, Author: "M. Fowler"},
	{ID: 2, Title: "Circuit breakers in practice", Price: Price{"39.00", "EUR"}, Seats: 25, Author: "M. Nygard"},
	{ID: 3, Title: "Reading legacy PHP", Price: Price{"19.00", "EUR"}, Seats: 100, Author: "R. Lerdorf"},
}

// Legacy is the sample monolith. Hits counts requests by path.
type Legacy struct {
	mu       sync.Mutex
	sessions map[string]string
	hits     sync.Map // path -> *atomic.Int64
	// Now is the clock used for updated_at fields; tests may replace it.
	Now func() time.Time
	// IdentitySecret, when set, makes the monolith accept the identity
	// the gateway's legacy_identity plugin signs (X-Legacy-User,
	// X-Legacy-Time, X-Legacy-Signature), as a PHP app would with the
	// snippet in docs/auth.md.
	IdentitySecret []byte
}

// New returns the sample monolith.
func New() *Legacy {
	return &Legacy{sessions: map[string]string{}, Now: time.Now}
}

// Hits returns how many requests path received.
func (l *Legacy) Hits(path string) int64 {
	if v, ok := l.hits.Load(path); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

func (l *Legacy) count(path string) {
	v, _ := l.hits.LoadOrStore(path, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// ServeHTTP implements http.Handler.
func (l *Legacy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.count(r.URL.Path)
	// What a 2009 LAMP stack says about itself.
	w.Header().Set("X-Powered-By", "PHP/5.6.40")
	w.Header().Set("Server", "Apache/2.2.15 (CentOS)")
	if rest, ok := strings.CutPrefix(r.URL.Path, "/index.php/"); ok {
		l.pathInfo(w, r, "/"+rest)
		return
	}
	switch r.URL.Path {
	case "/", "/index.php":
		// The front controller: ?page= selects the page.
		switch r.URL.Query().Get("page") {
		case "courses":
			l.courses(w)
		case "course":
			l.course(w, r)
		case "export":
			l.export(w, r)
		default:
			l.index(w)
		}
	case "/courses.php":
		l.courses(w)
	case "/course.php":
		l.course(w, r)
	case "/seats.php":
		l.seats(w, r)
	case "/login.php":
		l.login(w, r)
	case "/logout.php":
		l.logout(w, r)
	case "/account.php":
		l.account(w, r)
	case "/export.php":
		l.export(w, r)
	case "/whoami.php":
		l.whoami(w, r)
	default:
		if strings.HasSuffix(r.URL.Path, ".php") {
			// The custom PHP error handler: a "Not Found" page served
			// with 200.
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<html><head><title>Course shop</title></head><body><h1>Not Found</h1><p>Sorry, that page does not exist.</p></body></html>\n")
			return
		}
		// An HTML error page, but with the right status at least.
		w.Header().Set("Content-Type", "text/html; charset=iso-8859-1")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "<html><body><h1>Not Found</h1><p>The requested URL %s was not found on this server.</p></body></html>\n", html.EscapeString(r.URL.Path))
	}
}

// pathInfo serves /index.php/... as PHP's PATH_INFO routing does: the
// API the monolith grew before the migration, still reachable behind the
// front controller (/index.php/api/courses/1), which is why the inventory
// flags such paths as aliases of migrated routes.
func (l *Legacy) pathInfo(w http.ResponseWriter, r *http.Request, info string) {
	switch {
	case info == "/api/courses":
		l.courses(w)
	case strings.HasPrefix(info, "/api/courses/"):
		q := r.URL.Query()
		q.Set("id", strings.TrimPrefix(info, "/api/courses/"))
		r.URL.RawQuery = q.Encode()
		l.course(w, r)
	default:
		w.Header().Set("Content-Type", "text/html; charset=iso-8859-1")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "<html><body><h1>Not Found</h1><p>The requested URL %s was not found on this server.</p></body></html>\n", html.EscapeString(r.URL.Path))
	}
}

func (l *Legacy) index(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, `<html><head><title>Course shop</title></head><body>
<h1>Course shop (legacy)</h1>
<ul><li><a href="/course.php?id=1">Strangler-fig migrations</a></li>
<li><a href="/courses.php">All courses</a></li><li><a href="/account.php">My account</a></li></ul>
</body></html>
`)
}

type legacyCourse struct {
	Course
	UpdatedAt string `json:"updated_at"`
}

func (l *Legacy) view(c Course) legacyCourse {
	return legacyCourse{Course: c, UpdatedAt: l.Now().UTC().Format(time.RFC3339)}
}

func (l *Legacy) courses(w http.ResponseWriter) {
	out := make([]legacyCourse, 0, len(Catalogue))
	for _, c := range Catalogue {
		out = append(out, l.view(c))
	}
	writeJSON(w, 200, map[string]any{"courses": out})
}

func (l *Legacy) course(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.URL.Query().Get("id"))
	for _, c := range Catalogue {
		if err == nil && c.ID == id {
			writeJSON(w, 200, l.view(c))
			return
		}
	}
	// The legacy quirk: a failure reported as 200 with an error envelope.
	writeJSON(w, 200, map[string]any{"result": "fail", "code": 404, "message": "course not found"})
}

// seats answers a course's free seats: /seats.php?course=1. The demo's new
// service answers the same (no deliberate difference here), so its shadow
// comparison matches.
func (l *Legacy) seats(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.URL.Query().Get("course"))
	for _, c := range Catalogue {
		if err == nil && c.ID == id {
			writeJSON(w, 200, Seats{Course: c.ID, Seats: c.Seats, Available: c.Seats > 0})
			return
		}
	}
	writeJSON(w, 200, map[string]any{"result": "fail", "code": 404, "message": "course not found"})
}

// Seats is a course's seat availability, as both demo services render it.
type Seats struct {
	Course    int  `json:"course"`
	Seats     int  `json:"seats"`
	Available bool `json:"available"`
}

func (l *Legacy) login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSON(w, 200, map[string]any{"result": "fail", "code": 405, "message": "use POST"})
		return
	}
	user := r.FormValue("user")
	if user == "" {
		writeJSON(w, 200, map[string]any{"result": "fail", "code": 401, "message": "missing user"})
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	sid := hex.EncodeToString(b[:])
	l.mu.Lock()
	l.sessions[sid] = user
	l.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "PHPSESSID", Value: sid, Path: "/", HttpOnly: true})
	http.SetCookie(w, &http.Cookie{Name: "uid", Value: user, Path: "/"})
	w.Header().Set("Location", "/account.php")
	w.WriteHeader(http.StatusFound)
}

func (l *Legacy) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie("PHPSESSID"); err == nil {
		l.mu.Lock()
		delete(l.sessions, c.Value)
		l.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: "PHPSESSID", Value: "", Path: "/", MaxAge: -1})
	w.Header().Set("Location", "/")
	w.WriteHeader(http.StatusFound)
}

// user is who the request is: a signed identity from the gateway, else
// the PHPSESSID session.
func (l *Legacy) user(r *http.Request) string {
	if l.IdentitySecret != nil {
		if u, ok := legacyadapter.Verify(l.IdentitySecret, r.Header.Get("X-Legacy-User"), r.Header.Get("X-Legacy-Time"),
			r.Header.Get("X-Legacy-Signature"), r.Method, r.RequestURI, time.Now(), time.Minute); ok {
			return u
		}
	}
	c, err := r.Cookie("PHPSESSID")
	if err != nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sessions[c.Value]
}

// whoami says who the monolith thinks the caller is, and how it knows.
func (l *Legacy) whoami(w http.ResponseWriter, r *http.Request) {
	via := "anonymous"
	if r.Header.Get("X-Legacy-User") != "" {
		via = "signed identity headers"
	} else if _, err := r.Cookie("PHPSESSID"); err == nil {
		via = "PHPSESSID session"
	}
	user := l.user(r)
	if user == "" {
		via = "anonymous"
	}
	writeJSON(w, 200, map[string]any{"user": user, "via": via})
}

func (l *Legacy) account(w http.ResponseWriter, r *http.Request) {
	if u := l.user(r); u != "" {
		writeJSON(w, 200, map[string]any{"user": u, "courses": []int{1, 3}})
		return
	}
	c, err := r.Cookie("PHPSESSID")
	var user string
	if err == nil {
		l.mu.Lock()
		user = l.sessions[c.Value]
		l.mu.Unlock()
	}
	if user == "" {
		w.Header().Set("Location", "/login.php")
		w.WriteHeader(http.StatusFound)
		return
	}
	writeJSON(w, 200, map[string]any{"user": user, "courses": []int{1, 3}})
}

// export streams a CSV of rows lines (default 50,000): the report that took
// a real migration's monolith down when it was buffered.
func (l *Legacy) export(w http.ResponseWriter, r *http.Request) {
	rows := 50000
	if v, err := strconv.Atoi(r.URL.Query().Get("rows")); err == nil && v >= 0 && v <= 10_000_000 {
		rows = v
	}
	w.Header().Set("Content-Type", "text/csv")
	w.Header().Set("Content-Disposition", `attachment; filename="export.csv"`)
	fl, _ := w.(http.Flusher)
	fmt.Fprintln(w, "row,course,title,price,currency")
	for i := 1; i <= rows; i++ {
		c := Catalogue[i%len(Catalogue)]
		fmt.Fprintf(w, "%d,%d,%q,%s,%s\n", i, c.ID, c.Title, c.Price.Amount, c.Price.Currency)
		if fl != nil && i%10000 == 0 {
			fl.Flush()
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
