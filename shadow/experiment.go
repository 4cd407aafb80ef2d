package shadow

import (
	"time"
)

// Options configure the Engine; zero values take defaults.
type Options struct {
	// Workers run candidate calls. Default 4.
	Workers int
	// Queue bounds waiting candidates; beyond it they are dropped. Default
	// 1000.
	Queue int
	// Recent is how many recent mismatches are kept per route. Default 100.
	Recent int
	// File, when set, receives every Result as a JSON line.
	File string
	// FileMaxBytes rotates File (to File.1) above this size. Default 64 MiB.
	FileMaxBytes int64
	// Store keeps the results; nil is a MemoryStore of Recent mismatches
	// per route (one replica). A shared Store lets replicas report
	// together.
	Store Store
}

// Experiment is one route's shadow comparison (github/scientist's
// Experiment): how candidates are called and how their answers are
// compared with the control's.
type Experiment struct {
	// Route is the route's id.
	Route string
	// Template is the route's path pattern as written ("/api/courses/{id}",
	// "/static/*" for a prefix): with the method and the query's keys it
	// makes a request's shape (see Shape).
	Template string
	// MaxBody caps the request body copied for a candidate and each
	// response body compared (after Content-Encoding is decoded); a longer
	// one is skipped and counted.
	MaxBody int64
	// Timeout bounds a candidate call.
	Timeout time.Duration
	// Headers compared besides the status and body (canonical names),
	// each as the ordered list of its values.
	Headers []string
	// JSON holds the comparison rules: its Max (the budget of differences
	// kept per comparison), Values (what is kept of differing values) and
	// Normalize apply to the whole response, headers and text bodies too.
	JSON JSONComparer
	// Redact lists what is never stored from the request: query parameter
	// names (lower case) and header names (canonical), besides the
	// built-in ones (see SecretHeader, SecretQuery).
	RedactQueries []string
	RedactHeaders []string
	// Ready are the thresholds of the route's readiness verdict.
	Ready Readiness
}

// Observation is one side's answer (scientist's Observation).
type Observation struct {
	// Name is the side that answered: "legacy" or "new".
	Name     string        `json:"side"`
	Status   int           `json:"status"`
	Duration time.Duration `json:"duration_ns"`
	// Err is the kind of failure when the call failed ("timeout",
	// "reset"...); the observation then has no answer.
	Err string `json:"error,omitempty"`
	// Header holds the compared headers (canonical names), each with its
	// values in the order the side sent them.
	Header map[string][]string `json:"-"`
	// Body is the body as sent, up to the cap; Encoding its
	// Content-Encoding (decoded before comparing).
	Body        []byte `json:"-"`
	Encoding    string `json:"-"`
	ContentType string `json:"-"`
}

// Result is one comparison (scientist's Result): the control the client
// got, the candidate, and the differences.
type Result struct {
	Time  time.Time `json:"time"`
	Route string    `json:"route"`
	// Result is match, mismatch, error (the candidate failed), dropped
	// (the queue was full) or noise (a second call to the control's side,
	// compared with the control: what differs is noise).
	Result    string `json:"result"`
	RequestID string `json:"request_id"`
	// The request, redacted: method, path, query; Shape is its method,
	// route template and query keys (see Shape).
	Method string            `json:"method,omitempty"`
	Path   string            `json:"path,omitempty"`
	Query  string            `json:"query,omitempty"`
	Shape  string            `json:"shape,omitempty"`
	Header map[string]string `json:"header,omitempty"`
	// Control and Candidate: which side answered, status, duration.
	Control   *Observation `json:"control,omitempty"`
	Candidate *Observation `json:"candidate,omitempty"`
	// Diffs are the differences kept (at most the experiment's budget);
	// Differences counts every difference found. When it is larger the
	// result is Truncated, and More counts the differences not kept by
	// generic path.
	Diffs       []Diff         `json:"diffs,omitempty"`
	Differences int            `json:"differences,omitempty"`
	Truncated   bool           `json:"truncated,omitempty"`
	More        map[string]int `json:"more_paths,omitempty"`
	// Noisy lists the differences left out because their paths are noise.
	Noisy []string `json:"noisy,omitempty"`
}

// Matched reports whether control and candidate agreed.
func (r *Result) Matched() bool { return r.Result == "match" }

// A Call is a shadow request ready to send: package proxy builds it while
// the client request is still readable and sends it through its one
// outbound path, so the candidate side's bulkheads and breakers apply.
type Call interface {
	// Do sends the request and observes the answer, reading at most
	// maxBody bytes of body. skip is non-empty when no comparison can be
	// made: "body_too_large", or the reason the call was shed
	// ("breaker_open", "overloaded", "no_instance").
	Do(timeout time.Duration, maxBody int64) (o Observation, skip string)
	// Release frees the call's request.
	Release()
}

// Job is one sampled request: the candidate call, the control as the
// client got it (its body captured as it streamed), and what a person
// needs to reproduce the request, redacted.
type Job struct {
	Experiment *Experiment
	RequestID  string
	Method     string
	Path       string
	Query      string
	Shape      string
	Header     map[string]string
	Control    Observation
	Candidate  Call
	// Noise re-sends the control's request (nil when this request was not
	// sampled for noise): what differs between two answers of the same
	// implementation is noise.
	Noise Call

	truncated bool
}

// Capture appends control body bytes up to the experiment's cap.
func (j *Job) Capture(p []byte) {
	if j.truncated {
		return
	}
	if int64(len(j.Control.Body)+len(p)) > j.Experiment.MaxBody {
		j.truncated = true
		return
	}
	j.Control.Body = append(j.Control.Body, p...)
}

// Release frees the job's calls.
func (j *Job) Release() {
	if j.Candidate != nil {
		j.Candidate.Release()
	}
	if j.Noise != nil {
		j.Noise.Release()
	}
}
