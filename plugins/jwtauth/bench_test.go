package jwtauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/strangler/strangler/plugin"
	"gopkg.in/yaml.v3"
)

// benchVerifier builds a verifier from a jwt plugin config.
func benchVerifier(b *testing.B, cfg string) *verifier {
	b.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(cfg), &doc); err != nil {
		b.Fatal(err)
	}
	p, err := Spec{}.Build(doc.Content[0], plugin.Env{File: "routes.yaml", Path: "plugins[0].jwt"})
	if err != nil {
		b.Fatal(err)
	}
	return p.(*jwtPlugin).v
}

// BenchmarkVerify: one token verified over and over, cold (cache off:
// full signature check every time) and cached (a hash and a map lookup).
//
//	go test ./plugins/jwtauth -run '^$' -bench Verify -benchmem
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	secret := []byte("bench-secret-0123456789abcdef-0123456789")
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		b.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	pemFile := filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		b.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "alice", "roles": []string{"student"}, "exp": time.Now().Add(time.Hour).Unix()}
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	rs, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(rk)
	for _, c := range []struct {
		name, src, tok string
	}{
		{"HS256", "hmac_secret_file: " + secretFile, hs},
		{"RS256", "public_key_file: " + pemFile, rs},
	} {
		for _, cache := range []struct {
			name string
			size int
		}{{"cold", -1}, {"cached", 0}} {
			b.Run(c.name+"/"+cache.name, func(b *testing.B) {
				v := benchVerifier(b, "issuers: [{"+c.src+"}]\nforward: {sub: X-User-Id, roles: X-User-Roles}\ncache_size: "+strconv.Itoa(cache.size)+"\n")
				ctx := context.Background()
				tok := []byte(c.tok) // as it arrives: bytes of the request's header
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.verify(ctx, tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
