// Package filestamp tells whether a watched file changed: by size,
// modification time and inode, following symlinks, so a Kubernetes
// ConfigMap update (an atomic swap of the ..data symlink) shows as a new
// inode. The routes file watcher and the certificate watcher use it.
package filestamp

import (
	"os"
	"syscall"
	"time"
)

// Stamp is what a watcher compares.
type Stamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

// Of stamps path; false when it cannot be read.
func Of(path string) (Stamp, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return Stamp{}, false
	}
	st := Stamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st, true
}
