package demo

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
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

// KeyFile is the file, in the demo's state directory, holding the demo
// identity provider's signing key.
const KeyFile = "strangler-demo-iam.key"

// NewIAM returns the provider with a new signing key (kept nowhere).
func NewIAM() (*IAM, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return newIAM(k)
}

// LoadIAM returns the provider with the signing key kept in dir (KeyFile),
// creating it the first time: tokens minted before a restart of the demo
// still verify after it. The key's id is derived from the key itself, so a
// new key (the file deleted) never reuses the old key's kid: old tokens
// then fail as "unknown key", never as a bad signature under a known kid.
func LoadIAM(dir string) (*IAM, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("demo: %s is not a PEM key: delete it to make a new one", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		rk, ok := k.(*rsa.PrivateKey)
		if err != nil || !ok {
			return nil, fmt.Errorf("demo: %s does not hold an RSA key: delete it to make a new one", path)
		}
		return newIAM(rk)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("demo: reading the identity provider's key: %w", err)
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("demo: keeping the identity provider's key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("demo: keeping the identity provider's key: %w", err)
	}
	return newIAM(k)
}

func newIAM(k *rsa.PrivateKey) (*IAM, error) {
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pub)
	return &IAM{key: k, kid: "demo-" + hex.EncodeToString(sum[:8]), Now: time.Now}, nil
}

// KeyID is the kid of the provider's signing key.
func (i *IAM) KeyID() string { return i.kid }

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
