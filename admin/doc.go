// Package admin is the operator's side of the gateway: the admin API on
// the operator listener (read endpoints, and token-protected mutations that
// are audited and counted), its bearer tokens, and on-call's Overrides:
// the live set the proxy reads lock-free on every request, changed only
// once its Store (a file, replaced atomically) has the change.
//
//	curl -s -H "Authorization: Bearer $STRANGLER_ADMIN_TOKEN" \
//	  -d '{"side":"legacy","reason":"new side erroring","ttl":"1h"}' \
//	  http://127.0.0.1:9901/admin/routes/course-detail/side
package admin
