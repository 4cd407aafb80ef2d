package plugins

import (
	"github.com/strangler/strangler/gateway"
	legacyadapter "github.com/strangler/strangler/legacy-adapter"
	"github.com/strangler/strangler/plugins/headers"
	"github.com/strangler/strangler/plugins/jwtauth"
)

// Builtin returns a registry of every built-in plugin.
func Builtin() gateway.Registry {
	r := gateway.Registry{}
	r.Register(headers.Spec{})
	r.Register(jwtauth.Spec{})
	r.Register(legacyadapter.IdentitySpec{})
	r.Register(legacyadapter.NormalizeSpec{})
	return r
}
