package legacyadapter

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/strangler/strangler/plugin"
	"github.com/valyala/fasthttp"
	"gopkg.in/yaml.v3"
)

// IdentitySpec is the "legacy_identity" upstream plugin: it presents the
// identity verified at the edge to a legacy app that knows nothing of JWTs,
// as three headers signed with a shared secret:
//
//	X-Legacy-User:      alice
//	X-Legacy-Time:      1763900000
//	X-Legacy-Signature: hex(HMAC-SHA256(secret, "v1\n" + user + "\n" + time + "\n" + method + "\n" + request-uri))
//
// The signature covers the method and the exact request URI the legacy app
// receives, so a captured set cannot be replayed on another URL, and the
// timestamp lets the app refuse old ones (accept +-60s). Client-sent copies
// of the three headers are always removed. Configure it on the legacy
// upstream:
//
//	upstreams:
//	  legacy-php:
//	    urls: [http://10.0.0.5]
//	    plugins:
//	      - legacy_identity: {secret_env: LEGACY_IDENTITY_SECRET}
type IdentitySpec struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// IdentityConfig configures legacy_identity.
type IdentityConfig struct {
	// SecretEnv names the environment variable holding the shared secret
	// (at least 32 bytes). Or SecretFile.
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
	// Header names. Defaults X-Legacy-User, X-Legacy-Time,
	// X-Legacy-Signature.
	UserHeader      string `yaml:"user_header"`
	TimeHeader      string `yaml:"time_header"`
	SignatureHeader string `yaml:"signature_header"`
}

// Name implements plugin.UpstreamSpec.
func (IdentitySpec) Name() string { return "legacy_identity" }

// BuildUpstream implements plugin.UpstreamSpec.
func (s IdentitySpec) BuildUpstream(n *yaml.Node, env plugin.Env) (plugin.UpstreamPlugin, error) {
	var cfg IdentityConfig
	if err := env.Decode(n, &cfg); err != nil {
		return nil, err
	}
	secret, err := readSecret(n, env, cfg.SecretEnv, cfg.SecretFile)
	if err != nil {
		return nil, err
	}
	p := &identityPlugin{secret: secret, now: s.Now,
		user: or(cfg.UserHeader, "X-Legacy-User"), time: or(cfg.TimeHeader, "X-Legacy-Time"), sig: or(cfg.SignatureHeader, "X-Legacy-Signature")}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// readSecret reads a shared secret from an environment variable or a file;
// secrets never live in routes.yaml.
func readSecret(n *yaml.Node, env plugin.Env, envName, file string) ([]byte, error) {
	var secret string
	switch {
	case envName != "" && file != "":
		return nil, env.Errorf(n, "set secret_env or secret_file, not both")
	case envName != "":
		secret = os.Getenv(envName)
		if secret == "" && env.Offline {
			// Checking a file needs no secrets (a CI job has none):
			// serve requires it, validate -strict too.
			env.Warnf(n, "secret_env", "environment variable %s is not set (serve needs it)", envName)
			return make([]byte, 32), nil
		}
		if secret == "" {
			return nil, env.ErrorIn(n, "secret_env", "environment variable %s is not set", envName)
		}
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil && env.Offline {
			env.Warnf(n, "secret_file", "cannot read %s (serve needs it)", file)
			return make([]byte, 32), nil
		}
		if err != nil {
			return nil, env.ErrorIn(n, "secret_file", "cannot read %s", file)
		}
		secret = strings.TrimRight(string(b), "\r\n")
	default:
		return nil, env.Errorf(n, "missing secret_env or secret_file")
	}
	if len(secret) < 32 {
		return nil, env.Errorf(n, "the shared secret is %d bytes; use at least 32", len(secret))
	}
	return []byte(secret), nil
}

type identityPlugin struct {
	secret          []byte
	now             func() time.Time
	user, time, sig string
}

// Outbound removes client copies and signs the verified identity.
func (p *identityPlugin) Outbound(r plugin.Request, req plugin.OutboundRequest) {
	req.DelHeader(p.user)
	req.DelHeader(p.time)
	req.DelHeader(p.sig)
	user := r.Identity()
	if user == "" {
		return
	}
	ts := strconv.FormatInt(p.now().Unix(), 10)
	req.SetHeader(p.user, user)
	req.SetHeader(p.time, ts)
	req.SetHeader(p.sig, Sign(p.secret, user, ts, string(req.Method()), string(req.RequestURI())))
}

// Inbound implements plugin.UpstreamPlugin; identity has nothing to do.
func (p *identityPlugin) Inbound(plugin.Request, *fasthttp.Response) int { return 0 }

// Sign computes the signature legacy_identity sends; legacy apps (and
// tests) verify with the same function.
func Sign(secret []byte, user, ts, method, uri string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("v1\n" + user + "\n" + ts + "\n" + method + "\n" + uri))
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks signed identity headers as a legacy app would: the
// signature, and a timestamp within skew of now. It returns the user.
func Verify(secret []byte, user, ts, sig, method, uri string, now time.Time, skew time.Duration) (string, bool) {
	if user == "" || ts == "" || sig == "" {
		return "", false
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", false
	}
	if d := now.Sub(time.Unix(t, 0)); d > skew || d < -skew {
		return "", false
	}
	want := Sign(secret, user, ts, method, uri)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return "", false
	}
	return user, true
}
