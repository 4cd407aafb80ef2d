// Package plugins lists strangler's built-in plugins. Each plugin lives in
// its own package under plugins/ and is registered explicitly in Builtin:
// no init() side effects (skipper's filters/builtin does the same).
package plugins
