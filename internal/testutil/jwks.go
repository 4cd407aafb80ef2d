package testutil

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// JWKS renders RSA public keys, by key id, as a JWKS document (RS256).
func JWKS(keys map[string]*rsa.PublicKey) string {
	var out struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, k := range keys {
		out.Keys = append(out.Keys, map[string]string{
			"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
		})
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// KeyServer is a loopback JWKS endpoint whose answer a test changes.
type KeyServer struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	body   string
	hits   int
}

// NewKeyServer serves body with status 200 until Set changes it; it
// closes with the test.
func NewKeyServer(t testing.TB, body string) *KeyServer {
	ks := &KeyServer{status: 200, body: body}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.mu.Lock()
		ks.hits++
		status, body := ks.status, ks.body
		ks.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(ks.Close)
	return ks
}

// Set changes the answer.
func (ks *KeyServer) Set(status int, body string) {
	ks.mu.Lock()
	ks.status, ks.body = status, body
	ks.mu.Unlock()
}

// Count is how many requests the server had.
func (ks *KeyServer) Count() int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.hits
}
