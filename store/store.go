package store

import (
	"context"
	"errors"
	"time"
)

// Store keeps the state and its audit trail.
type Store interface {
	// Load returns the stored state. ErrNoState: the store holds none (a
	// Redis store that is new, or lost its data).
	Load(ctx context.Context) (State, error)
	// Update runs change on a copy of the newest state and stores the
	// result as the next revision, with the audit events change returns,
	// in one atomic step; on a concurrent change it runs change again on
	// the newer state. change returning no events changes nothing (every
	// change is audited). Update returns the stored state (and the current
	// one when nothing changed).
	Update(ctx context.Context, change func(s *State) ([]Event, error)) (State, error)
	// Record appends events that change no state (reloads).
	Record(ctx context.Context, events ...Event) error
	// Audit returns stored events, newest first.
	Audit(ctx context.Context, q Query) ([]Event, error)
	// Kind is "file" or "redis"; Where is the file or the URL without its
	// password.
	Kind() string
	Where() string
	Close() error
}

// Lease is a named lock on a decision only one replica may take at a time
// (expiring overrides; later, a migration plan's promotions). Held is
// cheap and never blocks.
type Lease interface {
	// Held reports whether this replica holds the lease now.
	Held() bool
}

// Local is the lease of a gateway without a fleet: always held.
type Local struct{}

// Held is always true.
func (Local) Held() bool { return true }

var (
	// ErrNoState is Load's answer when the store holds no state.
	ErrNoState = errors.New("the store holds no state")
	// ErrUnavailable wraps every failure to reach the store.
	ErrUnavailable = errors.New("the shared store is unreachable")
	// ErrConflict is returned when a change kept losing to concurrent
	// changes.
	ErrConflict = errors.New("the state kept changing under this change; try again")
)

// UnavailableError is a failure to reach the store; it matches
// ErrUnavailable and Err is the cause.
type UnavailableError struct{ Err error }

func (u *UnavailableError) Error() string   { return ErrUnavailable.Error() + ": " + u.Err.Error() }
func (u *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, u.Err} }
func wrapUnavailable(err error) error       { return &UnavailableError{Err: err} }
func opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 2*time.Second)
}
