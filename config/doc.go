// Package config is routes.yaml as data: the structs it decodes into
// (File and its sections), the strict line-numbered decoder (Decode,
// StrictDecode), the Index that locates every value so that problems found
// later point at their line and column, ConfigError, and the parsers for
// the sizes, durations and shares the file writes as strings.
//
// Decoding is step 1 and 2 of loading a routes file (STYLE.md §3); the
// semantic checks and the compilation into an immutable table are package
// gateway's.
package config
