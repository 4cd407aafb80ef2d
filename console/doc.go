// Package console is the operator console: a small web page on the
// operator listener (/ui/) that shows the migration's state and pulls
// on-call's levers. It holds no state of its own but the login sessions:
// every read and every action is a request to the admin API, made with
// the session's token, so the console can do nothing `strangler ctl`
// cannot, and every change is audited the same way.
//
// Security: a login exchanges an admin or read-only token for a session
// cookie (random id, HttpOnly, SameSite=Strict, Secure over TLS, with an
// expiry; sessions live in a bounded in-memory store); every action
// carries the session's CSRF token (synchronizer token, X-CSRF-Token) and
// a same-origin Origin; read-only sessions cannot act; every response has
// a strict Content-Security-Policy (no inline script, nothing from another
// host) and refuses to be framed. Assets are embedded: the page works
// offline and loads nothing from elsewhere. See docs/console.md.
package console
