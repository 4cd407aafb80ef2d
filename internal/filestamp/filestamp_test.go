package filestamp

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOf: a rewrite with the same size and time still differs when a
// symlink swap (a Kubernetes ConfigMap update) points the path at
// another file; an unchanged file stamps the same; a missing one is not
// ok.
func TestOf(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, f := range []string{a, b} {
		if err := os.WriteFile(f, []byte("same"), 0o600); err != nil {
			t.Fatal(err)
		}
		// The same modification time on both.
		if err := os.Chtimes(f, testTime, testTime); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "routes.yaml")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	s1, ok := Of(link)
	if !ok {
		t.Fatal("a readable file is not ok")
	}
	if s2, _ := Of(link); s2 != s1 {
		t.Errorf("an unchanged file stamps differently: %+v, %+v", s1, s2)
	}
	tmp := filepath.Join(dir, "routes.yaml.new")
	if err := os.Symlink(b, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	if s3, _ := Of(link); s3 == s1 {
		t.Errorf("a symlink swap to a file of the same size and time does not show: %+v", s3)
	}
	if _, ok := Of(filepath.Join(dir, "missing")); ok {
		t.Error("a missing file is ok")
	}
}

var testTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
