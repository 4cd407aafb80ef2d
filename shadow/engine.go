package shadow

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Engine runs candidates and keeps results. The client always gets the
// Control, unchanged and not delayed: jobs are submitted once the control
// response is complete and run on a bounded worker pool with a bounded
// queue; when the queue is full they are dropped and counted. The engine
// outlives route tables.
type Engine struct {
	queue   chan *Job
	metrics *Metrics
	log     *slog.Logger
	store   *Store
	file    *jsonlFile
	wg      sync.WaitGroup
	closed  atomic.Bool
	mu      sync.Mutex // guards close of queue
}

// NewEngine starts the workers; m may be nil (tests).
func NewEngine(o Options, m *Metrics, log *slog.Logger) *Engine {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Queue <= 0 {
		o.Queue = 1000
	}
	if o.Recent <= 0 {
		o.Recent = 100
	}
	if o.FileMaxBytes <= 0 {
		o.FileMaxBytes = 64 << 20
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{queue: make(chan *Job, o.Queue), metrics: m, log: log.With("component", "shadow"), store: NewStore(o.Recent)}
	if o.File != "" {
		e.file = &jsonlFile{path: o.File, max: o.FileMaxBytes}
	}
	for range o.Workers {
		e.wg.Add(1)
		go e.work()
	}
	return e
}

// Store is where results are kept.
func (e *Engine) Store() *Store { return e.store }

// Close stops accepting jobs and waits for the workers; what is still
// queued is dropped, counted.
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed.CompareAndSwap(false, true) {
		close(e.queue)
	}
	e.mu.Unlock()
	e.wg.Wait()
	if e.file != nil {
		e.file.close()
	}
}

// Submit queues a job without ever waiting; the engine releases it.
func (e *Engine) Submit(j *Job) {
	e.mu.Lock()
	defer e.mu.Unlock()
	route := j.Experiment.Route
	if e.closed.Load() {
		e.count(route, "dropped")
		j.Release()
		return
	}
	select {
	case e.queue <- j:
	default:
		e.count(route, "dropped")
		e.store.Add(&Result{Route: route, Result: "dropped"})
		j.Release()
	}
}

func (e *Engine) count(route, result string) {
	if e.metrics != nil {
		e.metrics.Results.WithLabelValues(route, result).Inc()
	}
}

// Skip counts a sampled request that could not be compared.
func (e *Engine) Skip(route, reason string) {
	e.count(route, "skipped")
	if e.metrics != nil {
		e.metrics.Skipped.WithLabelValues(route, reason).Inc()
	}
}

func (e *Engine) work() {
	defer e.wg.Done()
	for j := range e.queue {
		if e.closed.Load() {
			// Shutting down: what is still queued is dropped, counted.
			e.count(j.Experiment.Route, "dropped")
		} else {
			e.run(j)
		}
		j.Release()
	}
}

func (e *Engine) run(j *Job) {
	x := j.Experiment
	route := x.Route
	cand, skip := j.Candidate.Do(x.Timeout, x.MaxBody)
	if skip != "" {
		e.Skip(route, skip)
		return
	}
	if e.metrics != nil {
		e.metrics.Duration.WithLabelValues(route, cand.Name).Observe(cand.Duration.Seconds())
	}
	res := &Result{Time: time.Now().UTC(), Route: route, RequestID: j.RequestID, Method: j.Method, Path: j.Path, Query: j.Query,
		Header: j.Header, Control: &j.Control, Candidate: &cand}
	if cand.Err != "" {
		res.Result = "error"
		e.log.Debug("shadow candidate failed", "route", route, "request_id", j.RequestID, "err", cand.Err)
	} else {
		diffs := x.Compare(&j.Control, &cand)
		if j.Noise != nil {
			again, skip2 := j.Noise.Do(x.Timeout, x.MaxBody)
			if again.Err == "" && skip2 == "" {
				for _, d := range x.Compare(&j.Control, &again) {
					e.store.AddNoise(route, d)
				}
			}
		}
		diffs, res.Noisy = e.store.WithoutNoise(route, diffs)
		res.Diffs = diffs
		res.Result = "match"
		if len(diffs) > 0 {
			res.Result = "mismatch"
		}
	}
	// Keep what a person needs, not the bodies.
	j.Control.Body, j.Control.Header, cand.Body, cand.Header = nil, nil, nil, nil
	e.count(route, res.Result)
	e.store.Add(res)
	if e.file != nil {
		if err := e.file.write(res); err != nil {
			if e.metrics != nil {
				e.metrics.FileErrors.Inc()
			}
			e.log.Error("shadow results file write failed", "file", e.file.path, "err", err)
		}
	}
}
