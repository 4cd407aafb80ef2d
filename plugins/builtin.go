package plugins

import (
	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/plugins/headers"
	"github.com/strangler/strangler/plugins/jwtauth"
)

// Builtin returns a registry of every built-in plugin.
func Builtin() gateway.Registry {
	r := gateway.Registry{}
	r.Register(headers.Spec{})
	r.Register(jwtauth.Spec{})
	return r
}
