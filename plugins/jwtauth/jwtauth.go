package jwtauth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/plugin"
	"gopkg.in/yaml.v3"
)

// Spec is the "jwt" plugin. Configure it once in the top-level plugins
// list; a route's own "jwt" entry sets that route's policy and claim
// requirements.
type Spec struct {
	// Now is the clock for token validation; nil means time.Now.
	Now func() time.Time
}

// Name implements plugin.Spec.
func (Spec) Name() string { return "jwt" }

// RouteConfigurable marks jwt as configured per route by a route entry.
func (Spec) RouteConfigurable() {}

// Config is the top-level jwt entry.
type Config struct {
	// Issuers are the token issuers trusted; a token is matched to one by
	// its "iss" claim (a single issuer without issuer: takes every token).
	Issuers []IssuerConfig `yaml:"issuers"`
	// Policy is the default for routes: required (default), optional
	// (verify a token if present; reject a bad one) or none.
	Policy string `yaml:"policy"`
	// Leeway allowed on exp and nbf. Default 30s.
	Leeway string `yaml:"leeway"`
	// MaxTokenBytes rejects longer tokens before parsing. Default 8KiB.
	MaxTokenBytes int `yaml:"max_token_bytes"`
	// Cookie also reads the token from this cookie when no Authorization
	// header is sent. Default: none.
	Cookie string `yaml:"cookie"`
	// Forward maps claims to the request headers upstreams get. Default
	// {sub: X-User-Id}. Client-sent copies of these headers are always
	// removed, on every route.
	Forward map[string]string `yaml:"forward"`
	// ForwardToken keeps the Authorization header on the request sent
	// upstream. Default false: upstreams get the verified identity, not
	// the credential (Envoy's jwt_authn does the same).
	ForwardToken bool `yaml:"forward_token"`
	// CacheSize bounds the cache of verified tokens. Default 10000; 0
	// keeps the default, -1 disables the cache.
	CacheSize int `yaml:"cache_size"`
	// LegacySessionCookie lets a request without a token but with this
	// cookie (a user still logged in the old way) through a required
	// route whose side is legacy; it is kept on legacy even if the route
	// has a canary, and the legacy app checks the session itself.
	LegacySessionCookie string `yaml:"legacy_session_cookie"`
}

// IssuerConfig is one trusted issuer and its keys. Exactly one key source.
type IssuerConfig struct {
	// Issuer is the "iss" value; required when several issuers are set.
	Issuer string `yaml:"issuer"`
	// Audience, when set, requires "aud" to contain one of these.
	Audience []string `yaml:"audience"`
	// Algorithms narrows what the keys accept (default: what each key
	// type can verify; "none" is never accepted).
	Algorithms []string `yaml:"algorithms"`
	// HMACSecretEnv names an environment variable holding an HMAC
	// secret (HS256/384/512). Secrets are never written in routes.yaml.
	HMACSecretEnv string `yaml:"hmac_secret_env"`
	// HMACSecretFile is a file holding an HMAC secret.
	HMACSecretFile string `yaml:"hmac_secret_file"`
	// PublicKeyFile is a PEM RSA, ECDSA or Ed25519 public key.
	PublicKeyFile string `yaml:"public_key_file"`
	// JWKSURL is a key set fetched over HTTP(S), refreshed every
	// JWKSRefresh (default 5m) and re-fetched, at most every
	// JWKSMinRefetch (default 30s), when a token names an unknown kid.
	// When the endpoint fails the last good keys stay in use.
	JWKSURL        string `yaml:"jwks_url"`
	JWKSRefresh    string `yaml:"jwks_refresh"`
	JWKSMinRefetch string `yaml:"jwks_min_refetch"`
}

// RouteConfig is a route's own jwt entry.
type RouteConfig struct {
	// Policy overrides the top-level policy.
	Policy string `yaml:"policy"`
	// Require maps a claim to accepted values: the claim (a string, a
	// space-separated scope string, or a list) must hold at least one of
	// them, else 403.
	Require map[string][]string `yaml:"require"`
}

const (
	policyRequired = "required"
	policyOptional = "optional"
	policyNone     = "none"
)

// Build implements plugin.Spec.
func (s Spec) Build(n *yaml.Node, env plugin.Env) (plugin.Plugin, error) {
	var errs config.ConfigErrors
	add := func(err error) {
		var ces config.ConfigErrors
		var ce *config.ConfigError
		switch {
		case errors.As(err, &ces):
			errs = append(errs, ces...)
		case errors.As(err, &ce):
			errs = append(errs, ce)
		}
	}
	// The route's own entry is checked even when the top-level one is
	// broken: every problem at once.
	var rc RouteConfig
	if env.RouteConfig != nil {
		if err := env.RouteEnv().Decode(env.RouteConfig, &rc); err != nil {
			add(err)
		}
	}
	v, err := env.Share("jwt:"+env.Path, func() (any, error) {
		v, err := s.buildVerifier(n, env)
		if err != nil {
			return nil, err
		}
		return v, nil
	})
	if err != nil {
		add(err)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	ver := v.(*verifier)
	p := &jwtPlugin{v: ver, policy: ver.policy}
	if env.RouteConfig != nil {
		renv := env.RouteEnv()
		if rc.Policy != "" {
			if !validPolicy(rc.Policy) {
				return nil, renv.ErrorIn(env.RouteConfig, "policy", "bad policy %q: required, optional or none", rc.Policy)
			}
			p.policy = rc.Policy
		}
		for _, claim := range slices.Sorted(maps.Keys(rc.Require)) {
			vals := rc.Require[claim]
			if len(vals) == 0 {
				return nil, renv.ErrorIn(env.RouteConfig, "require."+claim, "list the accepted values")
			}
			p.require = append(p.require, requirement{claim: claim, any: vals})
		}
		if len(p.require) > 0 && p.policy == policyNone {
			return nil, renv.ErrorIn(env.RouteConfig, "require", "claim requirements need policy required or optional")
		}
	}
	return p, nil
}

func validPolicy(p string) bool {
	return p == policyRequired || p == policyOptional || p == policyNone
}

// verifier is the shared part: issuers, keys, the parser and the cache.
type verifier struct {
	issuers  []*issuer
	parser   *jwt.Parser
	leeway   time.Duration
	maxToken int
	cookie   string
	session  string
	forward  []forwardRule
	owned    []string // identity headers: always removed from client requests
	keepAuth bool
	policy   string
	now      func() time.Time
	cache    *tokenCache
	closers  []func() error
}

type issuer struct {
	iss      string
	audience []string
	static   *key
	jwks     *jwks
}

type forwardRule struct{ claim, header string }

// Close stops the key set refreshers.
func (v *verifier) Close() error {
	if v == nil {
		return nil
	}
	for _, c := range v.closers {
		_ = c()
	}
	return nil
}

func (s Spec) buildVerifier(n *yaml.Node, env plugin.Env) (*verifier, error) {
	var cfg Config
	if err := env.Decode(n, &cfg); err != nil {
		return nil, err
	}
	now := s.Now
	if now == nil {
		now = time.Now
	}
	v := &verifier{policy: policyRequired, maxToken: 8 << 10, leeway: 30 * time.Second, cookie: cfg.Cookie,
		session: cfg.LegacySessionCookie, keepAuth: cfg.ForwardToken, now: now}
	if cfg.Policy != "" {
		if !validPolicy(cfg.Policy) {
			return nil, env.ErrorIn(n, "policy", "bad policy %q: required, optional or none", cfg.Policy)
		}
		v.policy = cfg.Policy
	}
	if cfg.Leeway != "" {
		d, err := time.ParseDuration(cfg.Leeway)
		if err != nil || d < 0 {
			return nil, env.ErrorIn(n, "leeway", "bad duration %q: use a number with a unit, like 30s", cfg.Leeway)
		}
		v.leeway = d
	}
	switch {
	case cfg.MaxTokenBytes < 0:
		return nil, env.ErrorIn(n, "max_token_bytes", "must be positive")
	case cfg.MaxTokenBytes > 0:
		v.maxToken = cfg.MaxTokenBytes
	}
	if len(cfg.Issuers) == 0 {
		return nil, env.Errorf(n, "no issuers: list at least one under issuers:")
	}
	var allAlgs []string
	for i, ic := range cfg.Issuers {
		ip := fmt.Sprintf("issuers[%d]", i)
		is, err := v.buildIssuer(ic, ip, n, env, len(cfg.Issuers))
		if err != nil {
			_ = v.Close()
			return nil, err
		}
		v.issuers = append(v.issuers, is)
		if is.static != nil {
			allAlgs = append(allAlgs, is.static.algs...)
		} else {
			allAlgs = append(allAlgs, asymmetricAlgs...)
		}
	}
	if cfg.Forward == nil {
		cfg.Forward = map[string]string{"sub": "X-User-Id"}
	}
	for _, claim := range slices.Sorted(maps.Keys(cfg.Forward)) {
		h := cfg.Forward[claim]
		if !validHeaderName(h) {
			_ = v.Close()
			return nil, env.ErrorIn(n, "forward."+claim, "bad header name %q", h)
		}
		v.forward = append(v.forward, forwardRule{claim: claim, header: h})
		v.owned = append(v.owned, h)
	}
	switch {
	case cfg.CacheSize == 0:
		v.cache = newTokenCache(10000)
	case cfg.CacheSize > 0:
		v.cache = newTokenCache(cfg.CacheSize)
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(slices.Compact(slices.Sorted(slices.Values(allAlgs)))),
		jwt.WithLeeway(v.leeway),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v, nil
}

func (v *verifier) buildIssuer(ic IssuerConfig, ip string, n *yaml.Node, env plugin.Env, count int) (*issuer, error) {
	if ic.Issuer == "" && count > 1 {
		return nil, env.ErrorIn(n, ip, "issuer: is required when several issuers are configured (tokens are matched by their iss claim)")
	}
	for j, a := range ic.Algorithms {
		if strings.EqualFold(a, "none") {
			return nil, env.ErrorIn(n, fmt.Sprintf("%s.algorithms[%d]", ip, j), `"none" is never accepted`)
		}
	}
	is := &issuer{iss: ic.Issuer, audience: ic.Audience}
	sources := 0
	for _, s := range []string{ic.HMACSecretEnv, ic.HMACSecretFile, ic.PublicKeyFile, ic.JWKSURL} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return nil, env.ErrorIn(n, ip, "set exactly one of hmac_secret_env, hmac_secret_file, public_key_file, jwks_url")
	}
	hmacAlgs := []string{"HS256", "HS384", "HS512"}
	switch {
	case ic.HMACSecretEnv != "":
		secret := os.Getenv(ic.HMACSecretEnv)
		if secret == "" && env.Offline {
			env.Warnf(n, ip+".hmac_secret_env", "environment variable %s is not set (serve needs it)", ic.HMACSecretEnv)
			secret = strings.Repeat("x", 32)
		}
		if secret == "" {
			return nil, env.ErrorIn(n, ip+".hmac_secret_env", "environment variable %s is not set", ic.HMACSecretEnv)
		}
		if len(secret) < 32 {
			return nil, env.ErrorIn(n, ip+".hmac_secret_env", "the secret in %s is %d bytes; HMAC secrets need at least 32", ic.HMACSecretEnv, len(secret))
		}
		is.static = &key{algs: restrict(hmacAlgs, ic.Algorithms), k: []byte(secret)}
	case ic.HMACSecretFile != "":
		b, err := os.ReadFile(ic.HMACSecretFile)
		if err != nil && env.Offline {
			env.Warnf(n, ip+".hmac_secret_file", "cannot read %s: %v (serve needs it)", ic.HMACSecretFile, errors.Unwrap(err))
			b, err = []byte(strings.Repeat("x", 32)), nil
		}
		if err != nil {
			return nil, env.ErrorIn(n, ip+".hmac_secret_file", "cannot read %s: %v", ic.HMACSecretFile, errors.Unwrap(err))
		}
		secret := strings.TrimRight(string(b), "\r\n")
		if len(secret) < 32 {
			return nil, env.ErrorIn(n, ip+".hmac_secret_file", "the secret in %s is %d bytes; HMAC secrets need at least 32", ic.HMACSecretFile, len(secret))
		}
		is.static = &key{algs: restrict(hmacAlgs, ic.Algorithms), k: []byte(secret)}
	case ic.PublicKeyFile != "":
		b, err := os.ReadFile(ic.PublicKeyFile)
		if err != nil && env.Offline {
			// A file of the deployment, absent where the config is checked
			// (a CI job): the table is only inspected, so any public-key
			// algorithm stands in for the key's.
			env.Warnf(n, ip+".public_key_file", "cannot read %s: %v (serve needs it)", ic.PublicKeyFile, errors.Unwrap(err))
			is.static = &key{algs: restrict(asymmetricAlgs, ic.Algorithms)}
			break
		}
		if err != nil {
			return nil, env.ErrorIn(n, ip+".public_key_file", "cannot read %s: %v", ic.PublicKeyFile, errors.Unwrap(err))
		}
		pub, err := parsePublicKey(b)
		if err != nil {
			return nil, env.ErrorIn(n, ip+".public_key_file", "%s: %v", ic.PublicKeyFile, err)
		}
		algs, err := algsFor(pub)
		if err != nil {
			return nil, env.ErrorIn(n, ip+".public_key_file", "%s: %v", ic.PublicKeyFile, err)
		}
		is.static = &key{algs: restrict(algs, ic.Algorithms), k: pub}
	default:
		if !strings.HasPrefix(ic.JWKSURL, "http://") && !strings.HasPrefix(ic.JWKSURL, "https://") {
			return nil, env.ErrorIn(n, ip+".jwks_url", "bad URL %q: http:// or https://", ic.JWKSURL)
		}
		refresh, err := durationOr(ic.JWKSRefresh, 5*time.Minute)
		if err != nil {
			return nil, env.ErrorIn(n, ip+".jwks_refresh", "%v", err)
		}
		minRefetch, err := durationOr(ic.JWKSMinRefetch, 30*time.Second)
		if err != nil {
			return nil, env.ErrorIn(n, ip+".jwks_min_refetch", "%v", err)
		}
		j := newJWKS(ic.JWKSURL, ic.Algorithms, refresh, minRefetch, env.Logger.With("issuer", ic.Issuer))
		j.now = v.now
		j.count = fetchCounters(env, ic)
		// The first fetch is bounded: an identity provider that is down
		// at startup must not stop the gateway; its tokens get 401 until
		// the background refresh succeeds.
		if !env.Offline {
			j.start(2 * time.Second)
		}
		is.jwks = j
		v.closers = append(v.closers, j.Close)
	}
	if is.static != nil && len(is.static.algs) == 0 {
		return nil, env.ErrorIn(n, ip+".algorithms", "none of %v fits the key", ic.Algorithms)
	}
	return is, nil
}

// asymmetricAlgs are the algorithms a key set's keys may verify.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// fetchCounters returns the issuer's strangler_jwks_fetches_total series,
// both at 0 from the start: a failing identity provider shows as a rising
// error count next to a flat ok count, which StranglerJWKSFetchFailing
// (deploy/prometheus-rules.yaml) alerts on. The label is the issuer (its
// iss), or the key set's URL for a lone issuer without one.
func fetchCounters(env plugin.Env, ic IssuerConfig) [2]prometheus.Counter {
	vec := env.Register(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strangler_jwks_fetches_total",
		Help: "JWKS key set fetches by issuer and result (ok, or error: the last good keys stay in use).",
	}, []string{"issuer", "result"})).(*prometheus.CounterVec)
	label := ic.Issuer
	if label == "" {
		label = ic.JWKSURL
	}
	return [2]prometheus.Counter{vec.WithLabelValues(label, "ok"), vec.WithLabelValues(label, "error")}
}

func durationOr(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("bad duration %q: use a number with a unit, like 5m", s)
	}
	return d, nil
}

func parsePublicKey(b []byte) (any, error) {
	if k, err := jwt.ParseRSAPublicKeyFromPEM(b); err == nil {
		return k, nil
	}
	if k, err := jwt.ParseECPublicKeyFromPEM(b); err == nil {
		return k, nil
	}
	if k, err := jwt.ParseEdPublicKeyFromPEM(b); err == nil {
		if ek, ok := k.(ed25519.PublicKey); ok {
			return ek, nil
		}
	}
	return nil, errors.New("not a PEM RSA, ECDSA or Ed25519 public key")
}

func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// identity is a verified token: the subject, the claims and the headers
// to forward. Immutable once built; shared through the cache.
type identity struct {
	sub     string
	claims  jwt.MapClaims
	headers [][2]string
	exp     time.Time
}

// authError is a verification failure: the RFC 6750 error description.
type authError struct{ desc string }

func (e *authError) Error() string { return e.desc }

var (
	errUnknownIssuer = &authError{"unknown issuer"}
	errUnknownKey    = &authError{"unknown signing key"}
	errAlgorithm     = &authError{"signing algorithm not allowed"}
)

// verify checks a token: size, issuer, algorithm, key, signature, exp and
// nbf (with leeway), audience, and the forwarded claims.
//
// tok may point into the request's buffers: a cached token is looked up
// by its bytes' hash, and only a token being parsed is copied (issue 15:
// a cached token costs no allocation).
func (v *verifier) verify(ctx context.Context, raw []byte) (*identity, error) {
	if len(raw) > v.maxToken {
		return nil, &authError{"token too large"}
	}
	var sum [32]byte
	if v.cache != nil {
		sum = sha256.Sum256(raw)
		if id := v.cache.get(sum, v.now()); id != nil {
			return id, nil
		}
	}
	tok := string(raw)
	var is *issuer
	tk, err := v.parser.Parse(tok, func(t *jwt.Token) (any, error) {
		iss, _ := t.Claims.GetIssuer()
		is = v.issuerFor(iss)
		if is == nil {
			return nil, errUnknownIssuer
		}
		alg := t.Method.Alg()
		k := is.static
		if is.jwks != nil {
			kid, _ := t.Header["kid"].(string)
			k = is.jwks.lookup(ctx, kid)
			if k == nil {
				return nil, errUnknownKey
			}
		}
		if !k.allows(alg) {
			return nil, errAlgorithm
		}
		return k.k, nil
	})
	if err != nil {
		return nil, describe(err)
	}
	claims, _ := tk.Claims.(jwt.MapClaims)
	if len(is.audience) > 0 {
		aud, _ := claims.GetAudience()
		ok := false
		for _, a := range aud {
			if slices.Contains(is.audience, a) {
				ok = true
			}
		}
		if !ok {
			return nil, &authError{"wrong audience"}
		}
	}
	sub, _ := claims.GetSubject()
	if sub == "" || !safeValue(sub) {
		return nil, &authError{"missing or invalid sub claim"}
	}
	id := &identity{sub: sub, claims: claims}
	if exp, _ := claims.GetExpirationTime(); exp != nil {
		id.exp = exp.Time
	}
	for _, f := range v.forward {
		val, ok := claimString(claims[f.claim])
		if !ok {
			continue
		}
		if !safeValue(val) {
			return nil, &authError{"claim " + f.claim + " cannot be forwarded"}
		}
		id.headers = append(id.headers, [2]string{f.header, val})
	}
	if v.cache != nil {
		// Not yet valid tokens are not cached (nbf is rechecked every time).
		if nbf, _ := claims.GetNotBefore(); nbf == nil || !nbf.After(v.now()) {
			v.cache.put(sum, id, v.now())
		}
	}
	return id, nil
}

func (v *verifier) issuerFor(iss string) *issuer {
	for _, is := range v.issuers {
		if is.iss == iss || (is.iss == "" && len(v.issuers) == 1) {
			return is
		}
	}
	return nil
}

// describe maps a jwt error to an RFC 6750 error description; it never
// includes the token.
func describe(err error) *authError {
	var ae *authError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, jwt.ErrTokenExpired):
		return &authError{"token expired"}
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return &authError{"token not valid yet"}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return &authError{"token has no expiry"}
	case errors.Is(err, jwt.ErrTokenMalformed):
		return &authError{"malformed token"}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && strings.Contains(err.Error(), "signing method"):
		// The algorithm is not one any configured key accepts ("none").
		return errAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return &authError{"invalid signature"}
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return &authError{"token cannot be verified"}
	}
	return &authError{"invalid token"}
}

// claimString renders a claim for a header: strings as they are, numbers
// and booleans as JSON, lists of strings comma-separated.
func claimString(c any) (string, bool) {
	switch x := c.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), true
	case nil:
		return "", false
	}
	b, err := json.Marshal(c)
	return string(b), err == nil
}

// safeValue refuses what could split or smuggle a header: control
// characters, and values above 1 KiB.
func safeValue(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

type requirement struct {
	claim string
	any   []string
}

func (r requirement) met(claims jwt.MapClaims) bool {
	var have []string
	switch x := claims[r.claim].(type) {
	case string:
		have = strings.Fields(x) // "read write" scope strings
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				have = append(have, s)
			}
		}
	}
	for _, h := range have {
		if slices.Contains(r.any, h) {
			return true
		}
	}
	return false
}

// jwtPlugin is jwt on one route.
type jwtPlugin struct {
	v       *verifier
	policy  string
	require []requirement
}

// Guards implements plugin.Guard: a required token, and the claims a
// token must carry on this route.
func (p *jwtPlugin) Guards() []string {
	var out []string
	if p.policy == policyRequired {
		out = append(out, "jwt required")
	}
	for _, r := range p.require {
		out = append(out, "jwt requires "+r.claim+" in ["+strings.Join(r.any, ", ")+"]")
	}
	return out
}

// Wrap implements plugin.Plugin.
func (p *jwtPlugin) Wrap(next fiber.Handler) fiber.Handler {
	v := p.v
	return func(c *fiber.Ctx) error {
		req := plugin.From(c)
		// Whatever the policy, a client never sets the identity headers.
		for _, h := range v.owned {
			req.RemoveUpstreamHeader(h)
		}
		if p.policy == policyNone {
			return next(c)
		}
		tok, fromHeader := v.token(c)
		if len(tok) == 0 {
			if p.policy == policyOptional {
				return next(c)
			}
			deny := plugin.NewRequestError(401, "unauthorized", "authentication required",
				"WWW-Authenticate", `Bearer realm="strangler"`)
			if v.session != "" && len(c.Request().Header.Cookie(v.session)) > 0 {
				// Logged in the old way: legacy may serve it, the new
				// side never sees it without a verified identity. The
				// proxy decides on the side the request really goes to.
				req.LegacyOnly(deny)
				return next(c)
			}
			return deny
		}
		id, err := v.verify(c.UserContext(), tok)
		if err != nil {
			desc := err.Error()
			return plugin.NewRequestError(401, "invalid_token", desc,
				"WWW-Authenticate", `Bearer realm="strangler", error="invalid_token", error_description="`+desc+`"`)
		}
		for _, r := range p.require {
			if !r.met(id.claims) {
				return plugin.NewRequestError(403, "insufficient_scope", "the token lacks a required "+r.claim,
					"WWW-Authenticate", `Bearer realm="strangler", error="insufficient_scope", error_description="missing `+r.claim+`"`)
			}
		}
		req.SetIdentity(id.sub)
		for _, h := range id.headers {
			req.SetUpstreamHeader(h[0], h[1])
		}
		if fromHeader && !v.keepAuth {
			req.RemoveUpstreamHeader(fiber.HeaderAuthorization)
		}
		return next(c)
	}
}

// token returns the bearer token from Authorization, or from the cookie,
// as a view of the request's header (valid during the request only).
func (v *verifier) token(c *fiber.Ctx) ([]byte, bool) {
	h := c.Request().Header.Peek(fiber.HeaderAuthorization)
	if len(h) > 7 && bytes.EqualFold(h[:7], []byte("bearer ")) {
		return bytes.TrimSpace(h[7:]), true
	}
	if v.cookie != "" {
		if ck := c.Request().Header.Cookie(v.cookie); len(ck) > 0 {
			return ck, false
		}
	}
	return nil, false
}

// tokenCache holds verified tokens by SHA-256, until they expire and for
// at most five minutes (a key removed from a JWKS stops working soon).
type tokenCache struct {
	mu  sync.Mutex
	max int
	m   map[[32]byte]cached
}

type cached struct {
	id    *identity
	until time.Time
}

const cacheTTL = 5 * time.Minute

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: make(map[[32]byte]cached, min(max, 1024))}
}

func (tc *tokenCache) get(k [32]byte, now time.Time) *identity {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	e, ok := tc.m[k]
	if !ok {
		return nil
	}
	if !now.Before(e.until) {
		delete(tc.m, k)
		return nil
	}
	return e.id
}

func (tc *tokenCache) put(k [32]byte, id *identity, now time.Time) {
	until := now.Add(cacheTTL)
	if !id.exp.IsZero() && id.exp.Before(until) {
		until = id.exp
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if len(tc.m) >= tc.max {
		// Evict expired entries, then arbitrary ones (map order).
		for key, e := range tc.m {
			if !now.Before(e.until) || len(tc.m) >= tc.max {
				delete(tc.m, key)
			}
			if len(tc.m) < tc.max*3/4 {
				break
			}
		}
	}
	tc.m[k] = cached{id: id, until: until}
}
