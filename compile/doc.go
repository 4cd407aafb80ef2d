// Package compile turns a routes file into a routing.Table: it reads and
// strictly decodes the file (package config), applies every default in
// one place (compile.go), validates each section and builds the upstreams
// (pools, breakers, budgets, bulkheads, health), the routes with their
// plugin chains, shadow and migration settings, reporting every problem
// at its file:line (STYLE.md §3). A table is never mutated after it is
// built; package gateway swaps it in on a load or reload, and the CLI
// builds one to check, explain or diff a file.
package compile
