package legacyadapter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/strangler/strangler/plugin"
	"github.com/valyala/fasthttp"
	"gopkg.in/yaml.v3"
)

// NormalizeSpec is the "normalize" upstream plugin: it maps a legacy app's
// dishonest answers to the status they mean — a 200 whose JSON says
// {"result":"fail","code":404}, an HTML error page served with 200 — so
// breakers, retries, metrics and shadow comparison see the truth. Clients
// get the normalised status (respond: normalized, the default) or the
// original answer unchanged (respond: original); either way the gateway
// counts the meant status.
//
//	upstreams:
//	  legacy-php:
//	    plugins:
//	      - normalize:
//	          rules:
//	            - content_type: application/json
//	              json: {result: fail}
//	              status_from: code        # the real status is in this field
//	              set_status: 500          # when the field is missing or not 400-599
//	            - content_type: text/html
//	              body_contains: "<h1>Not Found</h1>"
//	              set_status: 404
type NormalizeSpec struct{}

// NormalizeConfig configures normalize.
type NormalizeConfig struct {
	// Respond is what clients get: normalized (default) or original.
	Respond string `yaml:"respond"`
	// MaxBodyBytes caps the body, in bytes, a rule may inspect; longer or
	// compressed bodies pass unchanged. Default 65536.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// Rules are tried in order; the first that matches decides.
	Rules []NormalizeRule `yaml:"rules"`
}

// NormalizeRule matches a response and says what it means.
type NormalizeRule struct {
	// Status the response must have. Default 200.
	Status int `yaml:"status"`
	// ContentType the response must start with (case-insensitive).
	ContentType string `yaml:"content_type"`
	// JSON lists top-level fields of a JSON object body and the string
	// values they must have.
	JSON map[string]string `yaml:"json"`
	// BodyContains is a substring the body must contain.
	BodyContains string `yaml:"body_contains"`
	// StatusFrom names a top-level JSON field holding the meant status
	// (a number or numeric string, 400-599).
	StatusFrom string `yaml:"status_from"`
	// SetStatus is the meant status when StatusFrom is unset or unusable.
	SetStatus int `yaml:"set_status"`
}

// Name implements plugin.UpstreamSpec.
func (NormalizeSpec) Name() string { return "normalize" }

// BuildUpstream implements plugin.UpstreamSpec.
func (NormalizeSpec) BuildUpstream(n *yaml.Node, env plugin.Env) (plugin.UpstreamPlugin, error) {
	var cfg NormalizeConfig
	if err := env.Decode(n, &cfg); err != nil {
		return nil, err
	}
	p := &normalizePlugin{max: 64 << 10, rewrite: true}
	switch cfg.Respond {
	case "", "normalized":
	case "original":
		p.rewrite = false
	default:
		return nil, env.ErrorIn(n, "respond", "bad respond %q: normalized or original", cfg.Respond)
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, env.ErrorIn(n, "max_body_bytes", "must be positive")
	} else if cfg.MaxBodyBytes > 0 {
		p.max = cfg.MaxBodyBytes
	}
	if len(cfg.Rules) == 0 {
		return nil, env.Errorf(n, "no rules: list at least one under rules:")
	}
	for i, r := range cfg.Rules {
		rp := fmt.Sprintf("rules[%d]", i)
		if r.Status == 0 {
			r.Status = 200
		}
		if r.SetStatus == 0 && r.StatusFrom == "" {
			return nil, env.ErrorIn(n, rp, "say what the response means: set_status or status_from")
		}
		if r.SetStatus != 0 && (r.SetStatus < 100 || r.SetStatus > 599) {
			return nil, env.ErrorIn(n, rp, "bad set_status %d", r.SetStatus)
		}
		if r.StatusFrom != "" && r.SetStatus == 0 {
			r.SetStatus = 502
		}
		if len(r.JSON) == 0 && r.BodyContains == "" && r.ContentType == "" {
			return nil, env.ErrorIn(n, rp, "matches every %d: add json, body_contains or content_type", r.Status)
		}
		if r.StatusFrom != "" && len(r.JSON) == 0 {
			return nil, env.ErrorIn(n, rp, "status_from reads a JSON body: add a json: condition")
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

type normalizePlugin struct {
	rules   []NormalizeRule
	max     int
	rewrite bool
}

// Outbound implements plugin.UpstreamPlugin; nothing to do.
func (p *normalizePlugin) Outbound(plugin.Request, plugin.OutboundRequest) {}

// Inbound applies the first matching rule.
func (p *normalizePlugin) Inbound(r plugin.Request, resp *fasthttp.Response) int {
	meant := p.judge(resp.StatusCode(), string(resp.Header.ContentType()), len(resp.Header.ContentEncoding()) > 0,
		func() ([]byte, bool) { return r.UpstreamBody(p.max) })
	if meant != 0 && p.rewrite {
		resp.SetStatusCode(meant)
	}
	return meant
}

// judge returns the status the response means by the first matching rule,
// or 0; body is read only when a rule needs it.
func (p *normalizePlugin) judge(status int, contentType string, compressed bool, body func() ([]byte, bool)) int {
	ct := strings.ToLower(contentType)
	var b []byte
	var obj map[string]any
	bodyRead, bodyOK, parsed := false, false, false
	for _, r := range p.rules {
		if r.Status != status || !strings.HasPrefix(ct, strings.ToLower(r.ContentType)) {
			continue
		}
		if len(r.JSON) > 0 || r.BodyContains != "" {
			if !bodyRead {
				b, bodyOK = body()
				bodyRead = true
			}
			if !bodyOK || compressed {
				continue // too long, or compressed: not inspected
			}
		}
		if r.BodyContains != "" && !bytes.Contains(b, []byte(r.BodyContains)) {
			continue
		}
		if len(r.JSON) > 0 {
			if !parsed {
				parsed = true
				_ = json.Unmarshal(b, &obj)
			}
			if obj == nil || !jsonMatches(obj, r.JSON) {
				continue
			}
		}
		meant := r.SetStatus
		if r.StatusFrom != "" {
			if s, ok := statusOf(obj[r.StatusFrom]); ok {
				meant = s
			}
		}
		return meant
	}
	return 0
}

func jsonMatches(obj map[string]any, want map[string]string) bool {
	for _, k := range slices.Sorted(maps.Keys(want)) {
		v, ok := obj[k]
		if !ok {
			return false
		}
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case float64:
			s = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			s = strconv.FormatBool(x)
		default:
			return false
		}
		if s != want[k] {
			return false
		}
	}
	return true
}

func statusOf(v any) (int, bool) {
	var n int
	switch x := v.(type) {
	case float64:
		n = int(x)
	case string:
		i, err := strconv.Atoi(x)
		if err != nil {
			return 0, false
		}
		n = i
	default:
		return 0, false
	}
	return n, n >= 400 && n <= 599
}
