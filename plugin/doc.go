// Package plugin is strangler's plugin API and nothing else: Spec and
// Plugin for plugins that run on routes, UpstreamSpec and UpstreamPlugin
// for plugins that run on every call to an upstream, the Registry that
// names them, the Env a plugin is built with, RequestError for rejections,
// and Request, what a running plugin may read and change (the proxy
// implements it). Plugins import this package, never the core.
//
// A plugin is one entry of a plugins list in routes.yaml:
//
//	plugins:
//	  - headers: {response: {set: {X-Frame-Options: DENY}}}
//
// Its Spec decodes the entry strictly with Env.Decode at compile time, so a
// misspelt key is a file:line:col error like any other.
package plugin
