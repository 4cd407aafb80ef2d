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
}

// Experiment is one route's shadow comparison (github/scientist's
// Experiment): how candidates are called and how their answers are
// compared with the control's.
type Experiment struct {
	// Route is the route's id.
	Route string
	// MaxBody caps the request body copied for a candidate and each
	// response body compared; a longer one is skipped and counted.
	MaxBody int64
	// Timeout bounds a candidate call.
	Timeout time.Duration
	// Headers compared besides the status and body (canonical names).
	Headers []string
	// JSON compares JSON bodies structurally.
	JSON JSONComparer
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
	// Header holds the compared headers; Body the body up to the cap.
	Header      map[string]string `json:"-"`
	Body        []byte            `json:"-"`
	ContentType string            `json:"-"`
}

// Result is one comparison (scientist's Result): the control the client
// got, the candidate, and the differences.
type Result struct {
	Time      time.Time         `json:"time"`
	Route     string            `json:"route"`
	Result    string            `json:"result"` // match, mismatch, error, dropped
	RequestID string            `json:"request_id"`
	Method    string            `json:"method,omitempty"`
	Path      string            `json:"path,omitempty"`
	Query     string            `json:"query,omitempty"`
	Header    map[string]string `json:"header,omitempty"`
	Control   *Observation      `json:"control,omitempty"`
	Candidate *Observation      `json:"candidate,omitempty"`
	Diffs     []Diff            `json:"diffs,omitempty"`
	Noisy     []string          `json:"noisy,omitempty"`
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
