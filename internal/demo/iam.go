package demo

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"regexp"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// IAMIssuer is the iss of the demo identity provider's tokens.
const IAMIssuer = "strangler-demo-iam"

// IAM is the demo's identity provider, the "new IAM" replacing the legacy
// login: it publishes its signing key as a JWKS document and mints RS256
// tokens for any user name (it is a demo: there are no passwords).
//
//	GET  /.well-known/jwks.json
//	POST /token   user=alice[&roles=student,admin]  -> {"access_token": "...", ...}
type IAM struct {
	key *rsa.PrivateKey
	kid string
	// Now is the clock for iat and exp.
	Now func() time.Time
}

// NewIAM generates the provider's signing key.
func NewIAM() (*IAM, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &IAM{key: k, kid: "demo-" + time.Now().UTC().Format("20060102"), Now: time.Now}, nil
}

var userRe = regexp.MustCompile(`^[a-z0-9._-]{1,64}$`)

// ServeHTTP implements http.Handler.
func (i *IAM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/.well-known/jwks.json":
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": i.kid,
			"n": base64.RawURLEncoding.EncodeToString(i.key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(i.key.E)).Bytes()),
		}}})
	case "/token":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte(`{"error":"use POST"}` + "\n"))
			return
		}
		user := r.FormValue("user")
		if !userRe.MatchString(user) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"user must be 1-64 of a-z 0-9 . _ -"}` + "\n"))
			return
		}
		roles := []string{"student"}
		if v := r.FormValue("roles"); v != "" {
			roles = splitComma(v)
		}
		tok, err := i.Mint(user, roles, time.Hour)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not found"}` + "\n"))
	}
}

// Mint signs a token for user.
func (i *IAM) Mint(user string, roles []string, ttl time.Duration) (string, error) {
	now := i.Now()
	tk := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": IAMIssuer, "aud": "course-shop", "sub": user, "roles": roles,
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(),
	})
	tk.Header["kid"] = i.kid
	return tk.SignedString(i.key)
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for j := 0; j <= len(s); j++ {
		if j == len(s) || s[j] == ',' {
			if j > start {
				out = append(out, s[start:j])
			}
			start = j + 1
		}
	}
	return out
}
