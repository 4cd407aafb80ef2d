package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// key is one verification key and the algorithms it may verify. Each key
// fixes its algorithms: an HMAC token is never checked against an RSA
// public key used as a secret (algorithm confusion), and "none" is never
// accepted.
type key struct {
	kid  string
	algs []string
	k    any // []byte, *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey
}

func (k *key) allows(alg string) bool {
	for _, a := range k.algs {
		if a == alg {
			return true
		}
	}
	return false
}

// algsFor returns the algorithms a public key can verify.
func algsFor(pub crypto.PublicKey) ([]string, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits: at least 2048 are required", p.N.BitLen())
		}
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, nil
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return []string{"ES256"}, nil
		case elliptic.P384():
			return []string{"ES384"}, nil
		case elliptic.P521():
			return []string{"ES512"}, nil
		}
		return nil, errors.New("unsupported elliptic curve")
	case ed25519.PublicKey:
		return []string{"EdDSA"}, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", pub)
}

// restrict keeps the algorithms of have that are in want (all of have when
// want is empty).
func restrict(have, want []string) []string {
	if len(want) == 0 {
		return have
	}
	var out []string
	for _, h := range have {
		for _, w := range want {
			if h == w {
				out = append(out, h)
			}
		}
	}
	return out
}

// jwk is one entry of a JWKS document (RFC 7517).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// parseJWKS decodes a key set, skipping keys it cannot use (symmetric
// keys, encryption keys, unknown types); it fails when the document is not
// a key set or holds no usable key.
func parseJWKS(data []byte, want []string) (map[string]*key, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %v", err)
	}
	out := map[string]*key{}
	for _, j := range doc.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		var pub crypto.PublicKey
		switch j.Kty {
		case "RSA":
			n, err1 := b64(j.N)
			e, err2 := b64(j.E)
			if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
				continue
			}
			pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		case "EC":
			var curve elliptic.Curve
			switch j.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			case "P-521":
				curve = elliptic.P521()
			default:
				continue
			}
			x, err1 := b64(j.X)
			y, err2 := b64(j.Y)
			if err1 != nil || err2 != nil {
				continue
			}
			pk := &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
			if !curve.IsOnCurve(pk.X, pk.Y) {
				continue
			}
			pub = pk
		case "OKP":
			x, err := b64(j.X)
			if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
				continue
			}
			pub = ed25519.PublicKey(x)
		default:
			continue
		}
		algs, err := algsFor(pub)
		if err != nil {
			continue
		}
		if j.Alg != "" {
			algs = restrict(algs, []string{j.Alg})
		}
		algs = restrict(algs, want)
		if len(algs) == 0 {
			continue
		}
		out[j.Kid] = &key{kid: j.Kid, algs: algs, k: pub}
	}
	if len(out) == 0 {
		return nil, errors.New("no usable signing key in the key set")
	}
	return out, nil
}

// jwks fetches a key set, keeps it fresh, and keeps serving the last good
// set when the endpoint is down or answers garbage: an identity provider's
// outage must not become the gateway's.
type jwks struct {
	url        string
	want       []string
	client     *http.Client
	refresh    time.Duration
	minRefetch time.Duration
	log        *slog.Logger
	now        func() time.Time

	mu       sync.Mutex
	keys     map[string]*key
	lastTry  time.Time
	lastGood time.Time
	fetching chan struct{} // closed when the fetch in progress ends
	fetches  int
	// count holds strangler_jwks_fetches_total{result="ok"} and
	// {result="error"}; nil counters (tests) count nothing.
	count     [2]prometheus.Counter
	stop      chan struct{}
	stopOnce  sync.Once
	loopEnded chan struct{}
}

const maxJWKSBytes = 1 << 20

func newJWKS(url string, want []string, refresh, minRefetch time.Duration, log *slog.Logger) *jwks {
	return &jwks{
		url: url, want: want, refresh: refresh, minRefetch: minRefetch, log: log, now: time.Now,
		client:    &http.Client{Timeout: 5 * time.Second},
		stop:      make(chan struct{}),
		loopEnded: make(chan struct{}),
	}
}

// start fetches once (bounded by wait) and then refreshes in the
// background until Close.
func (j *jwks) start(wait time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	j.fetch(ctx)
	cancel()
	go j.loop()
}

func (j *jwks) loop() {
	defer close(j.loopEnded)
	t := time.NewTicker(j.refresh)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			j.fetch(ctx)
			cancel()
		}
	}
}

// Close stops the refresh loop.
func (j *jwks) Close() error {
	j.stopOnce.Do(func() { close(j.stop) })
	return nil
}

// lookup returns the key for kid. An unknown kid (the provider rotated)
// triggers a refetch, at most once per minRefetch however many tokens ask:
// a flood of made-up kids cannot hammer the key server.
func (j *jwks) lookup(ctx context.Context, kid string) *key {
	j.mu.Lock()
	k := j.find(kid)
	if k != nil || j.now().Sub(j.lastTry) < j.minRefetch {
		j.mu.Unlock()
		return k
	}
	j.mu.Unlock()
	j.fetch(ctx)
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.find(kid)
}

// find looks kid up; a token without kid matches a set of exactly one key.
// j.mu is held.
func (j *jwks) find(kid string) *key {
	if kid == "" && len(j.keys) == 1 {
		for _, k := range j.keys {
			return k
		}
	}
	return j.keys[kid]
}

// fetch gets the key set; concurrent callers wait for the one in flight.
func (j *jwks) fetch(ctx context.Context) {
	j.mu.Lock()
	if ch := j.fetching; ch != nil {
		j.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	ch := make(chan struct{})
	j.fetching = ch
	j.lastTry = j.now()
	j.fetches++
	j.mu.Unlock()

	keys, err := j.get(ctx)

	j.mu.Lock()
	if err == nil {
		j.keys, j.lastGood = keys, j.now()
	}
	n := len(j.keys)
	j.fetching = nil
	j.mu.Unlock()
	close(ch)
	if c := j.count[errIndex(err)]; c != nil {
		c.Inc()
	}
	if err != nil {
		j.log.Warn("jwks fetch failed; keeping the last good keys", "url", j.url, "keys", n, "err", err)
	} else {
		j.log.Debug("jwks fetched", "url", j.url, "keys", n)
	}
}

// errIndex is 0 for a fetch that succeeded, 1 for one that failed.
func errIndex(err error) int {
	if err != nil {
		return 1
	}
	return 0
}

func (j *jwks) get(ctx context.Context) (map[string]*key, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxJWKSBytes {
		return nil, errors.New("key set larger than 1 MiB")
	}
	return parseJWKS(data, j.want)
}

// Fetches is how many times the key set was requested.
func (j *jwks) Fetches() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.fetches
}
