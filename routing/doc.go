// Package routing decides where a request goes. A request target is
// canonicalised once (Path.Parse: one canonical path for matching, policy
// and forwarding), matched against an immutable Table of compiled Routes
// (exact beats template beats regex beats prefix; constraints break ties;
// regex routes keep the file's order; ambiguity is a config error), and Route.Decide picks the side: an on-call Override
// over routes.yaml, then the sticky canary cohort. Target.AppendTarget
// builds the request target each side receives.
//
// Decide and AppendTarget are the only places these decisions are made:
// serving (package proxy), `strangler route` (Table.Explain) and the admin
// view all call them.
package routing
