package plugins

import (
	legacyadapter "github.com/strangler/strangler/legacy-adapter"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/plugins/headers"
	"github.com/strangler/strangler/plugins/jwtauth"
)

// Builtin returns a registry of every built-in plugin.
func Builtin() *plugin.Registry {
	r := plugin.NewRegistry()
	r.Register(headers.Spec{})
	r.Register(jwtauth.Spec{})
	r.RegisterUpstream(legacyadapter.IdentitySpec{})
	r.RegisterUpstream(legacyadapter.NormalizeSpec{})
	return r
}
