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
	store   Store
	file    *jsonlFile
	// experiments are the current table's, by route: the readiness gauge
	// judges each with its thresholds.
	experiments atomic.Pointer[map[string]*Experiment]
	wg          sync.WaitGroup
	closed      atomic.Bool
	mu          sync.Mutex // guards close of queue
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
	if o.Store == nil {
		o.Store = NewMemoryStore(o.Recent)
	}
	e := &Engine{queue: make(chan *Job, o.Queue), metrics: m, log: log.With("component", "shadow"), store: o.Store}
	if m != nil {
		m.readiness.setSource(e.readiness)
	}
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
func (e *Engine) Store() Store { return e.store }

// SetExperiments tells the engine the serving table's experiments (on
// every swap), so the readiness gauge covers each shadowed route, with
// its thresholds, from its first request on.
func (e *Engine) SetExperiments(xs []*Experiment) {
	m := make(map[string]*Experiment, len(xs))
	for _, x := range xs {
		m[x.Route] = x
	}
	e.experiments.Store(&m)
}

// Experiment returns the serving table's experiment for route, nil when
// the route has none.
func (e *Engine) Experiment(route string) *Experiment {
	if m := e.experiments.Load(); m != nil {
		return (*m)[route]
	}
	return nil
}

// readiness judges every current experiment, for the gauge.
func (e *Engine) readiness() map[string]float64 {
	m := e.experiments.Load()
	if m == nil {
		return nil
	}
	out := make(map[string]float64, len(*m))
	for route, x := range *m {
		out[route] = Judge(e.store.Tally(route), x.Ready).Value()
	}
	return out
}

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
	if j.truncated {
		// The control's body went past the cap as it streamed.
		e.Skip(route, "body_too_large")
		return
	}
	cand, skip := j.Candidate.Do(x.Timeout, x.MaxBody)
	if skip != "" {
		e.Skip(route, skip)
		return
	}
	if e.metrics != nil {
		e.metrics.Duration.WithLabelValues(route, cand.Name).Observe(cand.Duration.Seconds())
	}
	res := &Result{Time: time.Now().UTC(), Route: route, RequestID: j.RequestID, Method: j.Method, Path: j.Path, Query: j.Query,
		Shape: j.Shape, Header: j.Header, Control: &j.Control, Candidate: &cand}
	if cand.Err != "" {
		res.Result = "error"
		e.log.Debug("shadow candidate failed", "route", route, "request_id", j.RequestID, "err", cand.Err)
	} else {
		cmp, err := x.Compare(&j.Control, &cand)
		if err != nil {
			e.Skip(route, "body_too_large")
			return
		}
		if j.Noise != nil {
			e.probeNoise(j)
		}
		e.withoutNoise(res, &cmp)
		res.Result = "match"
		if len(res.Diffs)+len(res.More) > 0 {
			res.Result = "mismatch"
		}
	}
	// Keep what a person needs, not the bodies.
	j.Control.Body, j.Control.Header, cand.Body, cand.Header = nil, nil, nil, nil
	// Stored and written before it is counted: whoever sees the count
	// (a dashboard, a test) finds the result in the store and the file.
	e.publish(res)
	e.count(route, res.Result)
}

// withoutNoise moves the differences at paths known to be noise out of
// the comparison into res.Noisy.
func (e *Engine) withoutNoise(res *Result, cmp *Comparison) {
	noise := e.store.Noise(res.Route)
	res.Differences = cmp.Count
	for _, d := range cmp.Diffs {
		if noise[GenericPath(d.Path)] {
			res.Noisy = append(res.Noisy, d.Path)
			res.Differences--
			continue
		}
		res.Diffs = append(res.Diffs, d)
	}
	for p, n := range cmp.More {
		if noise[p] {
			res.Differences -= n
			continue
		}
		if res.More == nil {
			res.More = map[string]int{}
		}
		res.More[p] = n
	}
	res.Truncated = len(res.More) > 0
	if len(res.Diffs)+len(res.More) == 0 {
		res.Differences = 0
	}
}

// probeNoise calls the control's side a second time and records what
// differs between its two answers as noise (Diffy's idea).
func (e *Engine) probeNoise(j *Job) {
	x := j.Experiment
	again, skip := j.Noise.Do(x.Timeout, x.MaxBody)
	if again.Err != "" || skip != "" {
		return
	}
	cmp, err := x.Compare(&j.Control, &again)
	if err != nil {
		return
	}
	again.Body, again.Header = nil, nil
	ctl := j.Control
	ctl.Body, ctl.Header = nil, nil
	e.publish(&Result{Time: time.Now().UTC(), Route: x.Route, Result: "noise", RequestID: j.RequestID + "-noise",
		Method: j.Method, Path: j.Path, Query: j.Query, Shape: j.Shape, Control: &ctl, Candidate: &again,
		Diffs: cmp.Diffs, Differences: cmp.Count, Truncated: cmp.Truncated(), More: cmp.More})
}

// publish stores a result and appends it to the results file.
func (e *Engine) publish(res *Result) {
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
