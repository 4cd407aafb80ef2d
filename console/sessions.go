package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// session is one login. The token stays here, on the server: the browser
// holds only the random session id (in an HttpOnly cookie) and the CSRF
// token (in the page's memory).
type session struct {
	id      string
	name    string // the token's name, as the audit trail shows it
	admin   bool   // false: read-only
	token   string
	csrf    string
	expires time.Time
}

// sessions is the bounded in-memory session store.
type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	max int
	now func() time.Time
	met *Metrics
}

// newID returns 32 random bytes, base64url: 256 bits nobody can guess.
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create stores a new session and returns it with the number of live
// sessions it evicted to make room (the oldest first).
func (s *sessions) create(name string, admin bool, token string, ttl time.Duration) (*session, int) {
	now := s.now()
	ss := &session{id: newID(), name: name, admin: admin, token: token, csrf: newID(), expires: now.Add(ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	evicted := 0
	for len(s.m) >= s.max {
		var oldest *session
		for _, v := range s.m {
			if oldest == nil || v.expires.Before(oldest.expires) {
				oldest = v
			}
		}
		delete(s.m, oldest.id)
		evicted++
	}
	s.m[ss.id] = ss
	s.met.Sessions.Set(float64(len(s.m)))
	return ss, evicted
}

// sweep drops expired sessions (mu held).
func (s *sessions) sweep(now time.Time) {
	for id, v := range s.m {
		if !now.Before(v.expires) {
			delete(s.m, id)
		}
	}
}

// get returns the live session with this id, or nil.
func (s *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[id]
	if v == nil {
		return nil
	}
	if !s.now().Before(v.expires) {
		delete(s.m, id)
		s.met.Sessions.Set(float64(len(s.m)))
		return nil
	}
	return v
}

// delete ends a session.
func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	s.met.Sessions.Set(float64(len(s.m)))
}

// csrfOK compares a request's CSRF token with the session's in constant
// time.
func (ss *session) csrfOK(got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(ss.csrf)) == 1
}
