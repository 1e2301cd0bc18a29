package blob

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Each caller of a group returns only after a commit that started after
// it called, and callers that arrive while one commit runs share the
// next: many callers, few commits.
func TestGroupCommit(t *testing.T) {
	var g Group
	var started, finished atomic.Int64
	commit := func() error {
		started.Add(1)
		time.Sleep(5 * time.Millisecond)
		finished.Store(started.Load())
		return nil
	}
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			before := started.Load()
			if err := g.Run(commit); err != nil {
				t.Error(err)
			}
			if finished.Load() <= before {
				t.Errorf("returned after commit %d, which started before the call (%d had started)", finished.Load(), before)
			}
		}()
	}
	wg.Wait()
	if n := started.Load(); n == 0 || n > 100 {
		t.Fatalf("%d commits for 200 callers", n)
	}
	boom := errors.New("boom")
	if err := g.Run(func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("a failed commit: %v", err)
	}
	if err := g.Run(func() error { return nil }); err != nil {
		t.Fatalf("the commit after a failed one: %v", err)
	}
}
