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
// path as every other request. Experiment.Compare compares whole responses
// within a budget of differences: the status, headers as ordered lists of
// values, bodies once their Content-Encoding is decoded (JSON
// structurally, other text line by line after normalisers, anything else
// by digest). Differing values are kept as type, length and digest unless
// the route stores values (Values), and secrets are redacted by exact
// name and JSON path.
//
// A Store keeps one Tally per route (MemoryStore in one process; a shared
// Store can replace it); the results file feeds `strangler shadow report`,
// which builds the same Tally. Judge turns a route's Tally and its
// Readiness thresholds into a Verdict: ready, not ready or not enough
// evidence.
package shadow
