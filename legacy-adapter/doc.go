// Package legacyadapter is strangler's anti-corruption layer for the legacy
// side: everything that knows the legacy monolith's ideas about URLs,
// identity and errors lives here, so the gateway core and the new services
// stay free of them.
//
// The legacy URL scheme is expressed per route in routes.yaml
// (legacy.rewrite, e.g. "/course.php?id={id}"), compiled by the gateway.
// Identity bridging (legacy_identity: the verified user as signed headers)
// and response normalisation (normalize: 200-with-an-error-envelope to the
// status it means) are upstream plugins, configured on the legacy upstream.
// The legacy session cookie passes through untouched; the jwt plugin's
// legacy_session_cookie lets its holders reach legacy routes without a
// token.
//
// Subpackage legacyadaptertest is a sample legacy monolith with the quirks
// real ones have (PHP-style URLs, a session cookie, errors returned as 200
// with an error envelope, a streamed CSV export); the demo and the tests
// run against it.
package legacyadapter
