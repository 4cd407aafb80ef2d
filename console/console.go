package console

import (
	"embed"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// CookieName is the session cookie's name.
const CookieName = "strangler_console"

// Defaults of Options.
const (
	DefaultSessionTTL  = 8 * time.Hour // one on-call shift
	DefaultMaxSessions = 256
)

// Options configure New.
type Options struct {
	// API serves the admin API (/admin/...): every read and every action
	// of the console is a request to it with the session's token.
	API http.Handler
	// Authenticate checks a token at login: its name, whether it may
	// change state (admin) or only read, and whether it is a token at all.
	Authenticate func(token string) (name string, admin bool, ok bool)
	Metrics      *Metrics
	Logger       *slog.Logger
	// SessionTTL is how long a login lasts (default DefaultSessionTTL);
	// MaxSessions bounds the sessions held (default DefaultMaxSessions:
	// the oldest is dropped, and counted, to make room).
	SessionTTL  time.Duration
	MaxSessions int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Console serves the operator console.
type Console struct {
	o        Options
	sessions *sessions
	log      *slog.Logger
}

// New returns the console.
func New(o Options) *Console {
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Console{o: o, log: o.Logger.With("component", "console"),
		sessions: &sessions{m: map[string]*session{}, max: o.MaxSessions, now: o.Now, met: o.Metrics}}
}

// Register adds the console's endpoints to mux: the page and its assets
// under /ui/, the login, the session, the logout, and /ui/api/..., the
// admin API through the session.
func (c *Console) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	})
	mux.HandleFunc("GET /ui/{$}", c.secure(c.asset("index.html")))
	for _, name := range []string{"app.js", "app.css", "favicon.svg"} {
		mux.HandleFunc("GET /ui/"+name, c.secure(c.asset(name)))
	}
	mux.HandleFunc("POST /ui/login", c.secure(c.login))
	mux.HandleFunc("GET /ui/session", c.secure(c.session))
	mux.HandleFunc("POST /ui/logout", c.secure(c.logout))
	mux.HandleFunc("/ui/api/{path...}", c.secure(c.forward))
	mux.HandleFunc("/ui/", c.secure(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such page")
	}))
}

// contentSecurityPolicy allows nothing but this listener's own scripts,
// styles, images and API; no inline script or style, no frames, no
// plugins, no form posts elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// secure sets the security headers every console response carries.
func (c *Console) secure(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		h(w, r)
	}
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

func (c *Console) asset(name string) http.HandlerFunc {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		panic("console: missing embedded asset " + name) // a build error
	}
	ct := contentTypes[path.Ext(name)]
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(b)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}

// sameOrigin refuses requests another site started: a browser sends
// Origin on every POST and DELETE, and Sec-Fetch-Site on every request.
// Clients that send neither (curl) are not browsers, and cannot hold the
// session's CSRF token without having logged in.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// sessionOf returns the request's live session, or nil.
func (c *Console) sessionOf(r *http.Request) *session {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return nil
	}
	return c.sessions.get(ck.Value)
}

func (c *Console) refuse(w http.ResponseWriter, reason string, status int, code, msg string) {
	c.o.Metrics.Refused.WithLabelValues(reason).Inc()
	writeError(w, status, code, msg)
}

type sessionView struct {
	Name    string    `json:"name"`
	Role    string    `json:"role"` // admin or read
	CSRF    string    `json:"csrf"`
	Expires time.Time `json:"expires"`
}

func (ss *session) view() sessionView {
	v := sessionView{Name: ss.name, Role: "read", CSRF: ss.csrf, Expires: ss.expires.UTC()}
	if ss.admin {
		v.Role = "admin"
	}
	return v
}

// login exchanges a token (a JSON body: never in the URL) for a session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		c.refuse(w, "origin", http.StatusForbidden, "cross_origin", "a login from another site is refused")
		return
	}
	// A JSON content type cannot be sent cross-site without a CORS
	// preflight this listener never answers.
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "json_required", `send {"token": "..."} as application/json`)
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", `send {"token": "..."}`)
		return
	}
	name, admin, ok := c.o.Authenticate(strings.TrimSpace(req.Token))
	if !ok {
		c.o.Metrics.Logins.WithLabelValues("denied").Inc()
		c.log.Warn("console login refused", "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "unauthorized", "not a valid admin or read-only token")
		return
	}
	ss, evicted := c.sessions.create(name, admin, strings.TrimSpace(req.Token), c.o.SessionTTL)
	if evicted > 0 {
		c.o.Metrics.Evicted.Add(float64(evicted))
		c.log.Warn("console sessions evicted: the session store is full", "evicted", evicted, "max", c.o.MaxSessions)
	}
	c.o.Metrics.Logins.WithLabelValues("ok").Inc()
	c.log.Info("console login", "by", name, "role", ss.view().Role, "remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: ss.id, Path: "/ui/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, Expires: ss.expires, MaxAge: int(c.o.SessionTTL.Seconds())})
	writeJSON(w, http.StatusOK, ss.view())
}

// session tells the page who is logged in, and the CSRF token its
// actions carry.
func (c *Console) session(w http.ResponseWriter, r *http.Request) {
	ss := c.sessionOf(r)
	if ss == nil {
		writeError(w, http.StatusUnauthorized, "no_session", "log in")
		return
	}
	writeJSON(w, http.StatusOK, ss.view())
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	ss := c.sessionOf(r)
	if ss != nil {
		if !sameOrigin(r) || !ss.csrfOK(r.Header.Get("X-CSRF-Token")) {
			c.refuse(w, "csrf", http.StatusForbidden, "csrf", "the request lacks this session's CSRF token")
			return
		}
		c.sessions.delete(ss.id)
		c.log.Info("console logout", "by", ss.name)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/ui/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

// forward sends /ui/api/{path} to the admin API's /admin/{path} with the
// session's token: the admin API decides, audits and counts as it does
// for strangler ctl. Changes also need the CSRF token, a same-origin
// request and an admin session.
func (c *Console) forward(w http.ResponseWriter, r *http.Request) {
	ss := c.sessionOf(r)
	if ss == nil {
		c.refuse(w, "session", http.StatusUnauthorized, "no_session", "log in: the session is missing or expired")
		return
	}
	target := "/admin/" + r.PathValue("path")
	if path.Clean(target) != target || strings.Contains(target, "//") {
		c.refuse(w, "path", http.StatusBadRequest, "bad_path", "not an admin API path")
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost, http.MethodDelete:
		if !sameOrigin(r) {
			c.refuse(w, "origin", http.StatusForbidden, "cross_origin", "a change from another site is refused")
			return
		}
		if !ss.csrfOK(r.Header.Get("X-CSRF-Token")) {
			c.log.Warn("console action refused: no CSRF token", "by", ss.name, "path", target)
			c.refuse(w, "csrf", http.StatusForbidden, "csrf", "the request lacks this session's CSRF token: reload the page")
			return
		}
		if !ss.admin {
			c.log.Warn("console action refused: read-only session", "by", ss.name, "path", target)
			c.refuse(w, "read_only", http.StatusForbidden, "read_only", "this is a read-only session: log in with an admin token to act")
			return
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, "method", "method not allowed")
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL = &url.URL{Path: target, RawQuery: r.URL.RawQuery}
	r2.RequestURI = r2.URL.RequestURI()
	r2.Header = http.Header{}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		r2.Header.Set("Content-Type", ct)
	}
	r2.Header.Set("Authorization", "Bearer "+ss.token)
	c.o.API.ServeHTTP(w, r2)
}
