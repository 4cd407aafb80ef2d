// Package shadow compares a route's two sides on real traffic, in
// github/scientist's words: each shadowed route runs an Experiment; the
// response the client gets is the Control; the same request sent to the
// route's other side is the Candidate; both are Observations, and comparing
// them gives a Result (match, or mismatch with the differing paths). The
// client always gets the control, unchanged and not delayed: candidates
// run on the Engine's bounded workers after the control response is
// complete, and a candidate's failure is recorded, never returned.
//
// Candidates are sent by package proxy (a Call), through the same outbound
// path as every other request. The Store keeps one Tally per route; the
// results file feeds `strangler shadow report`, which builds the same
// Tally.
package shadow
