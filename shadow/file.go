package shadow

import (
	"encoding/json"
	"os"
	"sync"
)

// jsonlFile appends results as JSON lines, rotating by size. Writes happen
// on shadow workers, never on the request path.
type jsonlFile struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
}

func (w *jsonlFile) write(r *Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		f, err := os.OpenFile(w.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		w.f, w.size = f, st.Size()
	}
	if w.size+int64(len(b)) > w.max && w.size > 0 {
		w.f.Close()
		w.f = nil
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			return err
		}
		f, err := os.OpenFile(w.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return err
		}
		w.f, w.size = f, 0
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	return err
}

func (w *jsonlFile) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}
