// Package headers is the "headers" plugin: it sets and removes headers on the
// request sent upstream and on the response sent to the client.
//
//	plugins:
//	  - headers:
//	      request:
//	        set: {X-Api-Version: "2"}
//	        remove: [X-Debug]
//	      response:
//	        set: {X-Frame-Options: DENY}
//	        remove: [X-Powered-By, Server]   # don't tell clients who answered
//
// Request changes are applied after the gateway strips client-controlled
// headers, so a client cannot undo them with a Connection header. Headers
// that frame the message or that the gateway owns (Host, Content-Length,
// Transfer-Encoding, Connection and the other hop-by-hop headers,
// X-Forwarded-*, X-Request-Id) cannot be changed here.
package headers

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/internal/hdr"
	"github.com/strangler/strangler/plugin"
	"gopkg.in/yaml.v3"
)

// Config is the plugin's routes.yaml configuration.
type Config struct {
	// Request changes the request sent upstream.
	Request Ops `yaml:"request"`
	// Response changes the response sent to the client.
	Response Ops `yaml:"response"`
}

// Ops are header operations; removals run before sets.
type Ops struct {
	// Set sets each header to the value, replacing any existing one.
	Set map[string]string `yaml:"set"`
	// Remove deletes each named header.
	Remove []string `yaml:"remove"`
}

// Spec builds the plugin.
type Spec struct{}

// Name implements plugin.Spec.
func (Spec) Name() string { return "headers" }

// reserved are headers the plugin may not touch.
var reserved = map[string]bool{
	"host": true, "content-length": true, "transfer-encoding": true, "connection": true,
	"keep-alive": true, "te": true, "trailer": true, "upgrade": true, "proxy-connection": true,
	"proxy-authenticate": true, "proxy-authorization": true, "x-request-id": true,
	"x-forwarded-for": true, "x-forwarded-host": true, "x-forwarded-proto": true, "forwarded": true,
}

// Build implements plugin.Spec.
func (Spec) Build(n *yaml.Node, env plugin.Env) (plugin.Plugin, error) {
	var cfg Config
	if err := env.Decode(n, &cfg); err != nil {
		return nil, err
	}
	p := &headersPlugin{}
	for _, side := range []struct {
		name string
		ops  Ops
		set  *[]kv
		del  *[]string
	}{
		{"request", cfg.Request, &p.reqSet, &p.reqDel},
		{"response", cfg.Response, &p.respSet, &p.respDel},
	} {
		set, del, bad := compile(side.ops)
		if bad != nil {
			return nil, env.ErrorIn(n, side.name+"."+bad.at, "%s", bad.msg)
		}
		*side.set, *side.del = set, del
	}
	if len(p.reqSet)+len(p.reqDel)+len(p.respSet)+len(p.respDel) == 0 {
		return nil, env.Errorf(n, "nothing to do: set request or response headers to set or remove")
	}
	return p, nil
}

type kv struct{ k, v string }

// problem is a bad entry: where it is (inside request/response) and why.
type problem struct{ at, msg string }

func compile(o Ops) (set []kv, del []string, bad *problem) {
	check := func(name string) string {
		if name == "" || strings.ContainsAny(name, " \t:\r\n_") {
			return fmt.Sprintf("bad header name %q", name)
		}
		if reserved[strings.ToLower(name)] || strings.HasPrefix(strings.ToLower(name), "x-strangler-") {
			return fmt.Sprintf("%s is managed by the gateway and cannot be changed here", name)
		}
		return ""
	}
	for _, name := range o.Remove {
		if msg := check(name); msg != "" {
			return nil, nil, &problem{"remove", msg}
		}
		del = append(del, name)
	}
	for _, name := range slices.Sorted(maps.Keys(o.Set)) {
		if msg := check(name); msg != "" {
			return nil, nil, &problem{"set." + name, msg}
		}
		v := o.Set[name]
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, nil, &problem{"set." + name, "value must not contain CR, LF or NUL"}
		}
		set = append(set, kv{name, v})
	}
	return set, del, nil
}

type headersPlugin struct {
	reqSet, respSet []kv
	reqDel, respDel []string
}

// Wrap implements plugin.Plugin.
func (p *headersPlugin) Wrap(next fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		req := plugin.From(c)
		for _, name := range p.reqDel {
			req.RemoveUpstreamHeader(name)
		}
		for _, h := range p.reqSet {
			req.SetUpstreamHeader(h.k, h.v)
		}
		err := next(c)
		rh := &c.Context().Response.Header
		for _, name := range p.respDel {
			hdr.DelResponse(rh, name)
		}
		for _, h := range p.respSet {
			hdr.SetResponse(rh, h.k, h.v)
		}
		return err
	}
}
