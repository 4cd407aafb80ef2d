// Package admin is the operator's side of the gateway: the admin API on
// the operator listener (read endpoints, and token-protected mutations that
// are audited and counted), its bearer tokens, and on-call's Overrides:
// the state the proxy reads lock-free on every request (overrides and
// forced breakers, at a revision), changed through its store (package
// store): a single replica's file, where a change the disk cannot keep
// still applies and is retried, or a fleet's Redis, where a change is a
// compare-and-set that every replica applies and a change the store cannot
// take is refused. The audit trail (GET /admin/audit) and the fleet's
// replicas (GET /admin/fleet) come from the same store.
//
//	curl -s -H "Authorization: Bearer $STRANGLER_ADMIN_TOKEN" \
//	  -d '{"side":"legacy","reason":"new side erroring","ttl":"1h"}' \
//	  http://127.0.0.1:9901/admin/routes/course-detail/side
package admin
