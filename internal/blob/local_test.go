package blob_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
)

// childEnv, when set to a directory, turns the test binary into a writer
// that starts a Put into that directory store and never finishes it, for
// TestDirSweepsTempOfKilledWriter to kill.
const childEnv = "BLOB_TEST_CHILD_PUT_DIR"

func TestMain(m *testing.M) {
	if dir, ok := os.LookupEnv(childEnv); ok {
		os.Exit(hangingPut(dir))
	}
	os.Exit(m.Run())
}

// hangingPut writes 64 KiB of an object and then waits forever for more.
func hangingPut(dir string) int {
	s, err := blob.OpenDir(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r := io.MultiReader(strings.NewReader(strings.Repeat("n", 64<<10)), blockingReader{})
	err = s.Put(context.Background(), "nar/x.nar.zst", r, blob.PutOptions{CreateOnly: true})
	fmt.Fprintln(os.Stderr, "put returned:", err)
	return 1
}

type blockingReader struct{}

func (blockingReader) Read([]byte) (int, error) { select {} }

// temps lists the temporary files below dir.
func temps(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasPrefix(e.Name(), ".tmp-") {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func backdate(t *testing.T, p string, age time.Duration) {
	t.Helper()
	old := time.Now().Add(-age)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
}

// A writer killed mid-Put leaves its temporary file; opening the store
// later removes it once it is older than StaleTempAge, and never removes a
// temporary file that is younger (a live writer's).
func TestDirSweepsTempOfKilledWriter(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(temps(t, dir)) == 0 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the writer never created its temporary file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) {
		t.Fatalf("killed writer: %v", err)
	}
	left := temps(t, dir)
	if len(left) != 1 {
		t.Fatalf("the killed writer left %v, want one temporary file", left)
	}
	if _, err := blob.OpenDir(dir); err != nil {
		t.Fatal(err)
	}
	if got := temps(t, dir); len(got) != 1 {
		t.Fatalf("a fresh temporary file was swept: %v", got)
	}
	backdate(t, left[0], blob.StaleTempAge+time.Minute)
	live := filepath.Join(dir, "nar", ".tmp-y.nar.zst-123")
	if err := os.WriteFile(live, []byte("being written"), 0o600); err != nil {
		t.Fatal(err)
	}
	backdate(t, live, blob.StaleTempAge-time.Minute)
	s, err := blob.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := temps(t, dir); len(got) != 1 || got[0] != live {
		t.Fatalf("after the sweep: %v, want only %s", got, live)
	}
	if _, err := s.Stat(context.Background(), "nar/x.nar.zst"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("the killed writer's object: %v", err)
	}
}

// A directory store opened WithClock stamps what it writes with that
// clock, as a remote store stamps objects with the server's: Stat and
// List report it, and PutOptions.Stored too.
func TestDirStampsObjectsWithItsClock(t *testing.T) {
	at := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	s, err := blob.Open(context.Background(), t.TempDir(), blob.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	var stored blob.Info
	if err := s.Put(context.Background(), "a/b", strings.NewReader("x"), blob.PutOptions{Stored: &stored}); err != nil {
		t.Fatal(err)
	}
	info, err := s.Stat(context.Background(), "a/b")
	if err != nil {
		t.Fatal(err)
	}
	var listed blob.Info
	if err := s.List(context.Background(), "a/", func(i blob.Info) error { listed = i; return nil }); err != nil {
		t.Fatal(err)
	}
	for what, got := range map[string]time.Time{"stored": stored.Updated, "stat": info.Updated, "list": listed.Updated} {
		if !got.Equal(at) {
			t.Errorf("%s: updated %s, want the store's clock %s", what, got, at)
		}
	}
}
