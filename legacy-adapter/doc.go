// Package legacyadapter is strangler's anti-corruption layer for the legacy
// side: everything that knows the legacy monolith's ideas about URLs,
// identity and errors lives here, so the gateway core and the new services
// stay free of them.
//
// Today the legacy URL scheme is expressed per route in routes.yaml
// (legacy.rewrite, e.g. "/course.php?id={id}"), compiled by the gateway.
// Identity bridging and response normalisation arrive with the auth issue.
//
// Subpackage legacyadaptertest is a sample legacy monolith with the quirks
// real ones have (PHP-style URLs, a session cookie, errors returned as 200
// with an error envelope, a streamed CSV export); the demo and the tests
// run against it.
package legacyadapter
