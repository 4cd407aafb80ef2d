// Package jwtauth is the "jwt" plugin: tokens verified once, at the edge,
// whichever side answers. Configure it at the top of routes.yaml; a route's
// own jwt entry sets its policy and claim requirements:
//
//	plugins:
//	  - jwt:
//	      policy: optional              # default for routes: required | optional | none
//	      issuers:
//	        - issuer: https://iam.example.com/
//	          audience: [courses]
//	          jwks_url: https://iam.example.com/.well-known/jwks.json
//	        - issuer: legacy-sessions
//	          hmac_secret_env: SESSION_JWT_SECRET
//	      forward: {sub: X-User-Id, roles: X-User-Roles}
//	routes:
//	  - id: admin
//	    match: {prefix: /admin}
//	    side: new
//	    new: {upstream: admin}
//	    plugins:
//	      - jwt: {policy: required, require: {roles: [admin]}}
//
// Keys fix their algorithms ("none" and HMAC-with-a-public-key are never
// accepted); JWKS sets are cached, refreshed, re-fetched (rate limited) for
// an unknown kid, and kept when the key server fails. Verified tokens are
// cached by SHA-256 until they expire (five minutes at most). Failures get
// 401 with an RFC 6750 WWW-Authenticate header; missing claims 403. The
// forwarded identity headers are removed from every client request, on
// every route, whatever its policy. Tokens are never logged.
package jwtauth
