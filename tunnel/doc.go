// Package tunnel joins a client connection and an upstream connection
// once a protocol upgrade (WebSocket, or another protocol) switched: both
// directions are copied until either side closes, no byte moves for the
// route's idle timeout, or its max duration ends. A half-close is passed
// on as a half-close, except for a WebSocket, whose own close handshake
// ends it. On shutdown a WebSocket gets a close frame (1001, going away)
// between two frames (frames.go follows their boundaries), other
// protocols a bounded wait; whatever is still open when the drain ends is
// closed.
//
// Package proxy does the upgrade's request and its 101, then opens a
// Tunnel in its Set and hands the client connection to Tunnel.Run.
package tunnel
