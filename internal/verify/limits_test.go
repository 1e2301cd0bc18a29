package verify_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/verify"
)

// silentServer accepts connections and never answers; it returns its URL.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

// artifactServer serves a signed ISO's sidecars from dir as they are and
// the ISO itself through send, which writes the body after the headers
// (Content-Length set) until it is done or the client goes.
func artifactServer(t *testing.T, dir string, send func(w http.ResponseWriter, r *http.Request, body []byte)) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Base(r.URL.Path)
		if name != attesttest.ISOName {
			http.ServeFile(w, r, filepath.Join(dir, name))
			return
		}
		body := attesttest.ReadFile(t, filepath.Join(dir, name))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		send(w, r.WithContext(mergeDone(r.Context(), done)), body)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) }) // runs first: handlers stop, so Close returns
	return srv.URL + "/r/" + attesttest.ISOName
}

// mergeDone is ctx, also done when done is closed.
func mergeDone(ctx context.Context, done <-chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-done:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx
}

// drip writes one byte every interval, starting with the first n at once.
func drip(n int, interval time.Duration) func(w http.ResponseWriter, r *http.Request, body []byte) {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Write(body[:n])
		w.(http.Flusher).Flush()
		for i := n; i < len(body); i++ {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(interval):
			}
			if _, err := w.Write(body[i : i+1]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
}

// stall writes the first n bytes, then nothing.
func stall(n int) func(w http.ResponseWriter, r *http.Request, body []byte) {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Write(body[:n])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
}

// verifyURLWithin runs VerifyURL and fails the test if it is still running
// after a bound far above the limits the tests set: a server held it.
func verifyURLWithin(t *testing.T, url, pub, keep string, l verify.Limits) (*verify.Report, error, time.Duration) {
	t.Helper()
	type result struct {
		rep *verify.Report
		err error
	}
	start := time.Now()
	ch := make(chan result, 1)
	go func() {
		rep, err := verify.VerifyURL(context.Background(), verify.VerifyOptions{Artifact: url, PublicKey: pub},
			verify.URLOptions{KeepDir: keep, Limits: l})
		ch <- result{rep, err}
	}()
	select {
	case r := <-ch:
		return r.rep, r.err, time.Since(start)
	case <-time.After(20 * time.Second):
		t.Fatalf("verify of %s still running after 20s: no limit cut the server off", url)
		return nil, nil, 0
	}
}

// A server that never answers, answers and then sends nothing, drips a
// byte at a time, or drips just fast enough for ever, is cut off by the
// limit that applies, within it: "could not verify" (exit 2), an error
// naming the limit and its variable, and nothing left in OUT (no partial
// file, no download directory).
func TestVerifyURLCutsSlowServers(t *testing.T) {
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	attesttest.SignISO(t, k, attesttest.Artifact(t, dir, attesttest.ISOName, 64<<10))
	const ms = time.Millisecond
	for _, tc := range []struct {
		name   string
		url    func(t *testing.T) string
		limits verify.Limits
		want   verify.Limit
		within time.Duration
	}{
		{"never answers", func(t *testing.T) string { return silentServer(t) + "/r/" + attesttest.ISOName },
			verify.Limits{Header: 300 * ms}, verify.LimitHeader, 3 * time.Second},
		{"never answers, overall deadline first", func(t *testing.T) string { return silentServer(t) + "/r/" + attesttest.ISOName },
			verify.Limits{Total: 300 * ms, Header: time.Minute}, verify.LimitTotal, 3 * time.Second},
		{"sends some bytes, then nothing", func(t *testing.T) string { return artifactServer(t, dir, stall(1000)) },
			verify.Limits{Idle: 300 * ms, MinRate: 1, RateWindow: time.Minute}, verify.LimitIdle, 3 * time.Second},
		{"drips a byte every 20ms", func(t *testing.T) string { return artifactServer(t, dir, drip(0, 20*ms)) },
			verify.Limits{Idle: 2 * time.Second, MinRate: 1000, RateWindow: 300 * ms}, verify.LimitMinRate, 3 * time.Second},
		{"drips above the minimum rate for ever", func(t *testing.T) string { return artifactServer(t, dir, drip(0, 20*ms)) },
			verify.Limits{Total: time.Second, Idle: 2 * time.Second, MinRate: 2, RateWindow: time.Second}, verify.LimitTotal, 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keep := t.TempDir()
			rep, err, took := verifyURLWithin(t, tc.url(t), k.Pub(), keep, tc.limits)
			var te *verify.TimeoutError
			if !errors.As(err, &te) || te.Limit != tc.want {
				t.Fatalf("error %v, want the %s", err, tc.want)
			}
			if verify.ExitCode(err) != verify.ExitCannotVerify || rep.OK {
				t.Errorf("exit %d, want %d (could not verify)", verify.ExitCode(err), verify.ExitCannotVerify)
			}
			if !strings.Contains(err.Error(), string(tc.want)) || !strings.Contains(err.Error(), "SOURCEOS_VERIFY_") {
				t.Errorf("the error does not name the limit and its variable: %v", err)
			}
			t.Log(err)
			if took > tc.within {
				t.Errorf("cut after %v, want within %v", took, tc.within)
			}
			if entries, _ := os.ReadDir(keep); len(entries) != 0 {
				t.Errorf("left in OUT: %v", entries)
			}
		})
	}
}

// The limits cut what is slow, not what starts slowly: a server that
// waits a third of the rate's window before sending the whole artifact
// verifies.
func TestVerifyURLLimitsLetASlowStartThrough(t *testing.T) {
	k := attesttest.NewKeys(t)
	dir := t.TempDir()
	attesttest.SignISO(t, k, attesttest.Artifact(t, dir, attesttest.ISOName, 1<<20))
	url := artifactServer(t, dir, func(w http.ResponseWriter, r *http.Request, body []byte) {
		time.Sleep(300 * time.Millisecond)
		w.Write(body)
	})
	keep := t.TempDir()
	rep, err, _ := verifyURLWithin(t, url, k.Pub(), keep,
		verify.Limits{Header: 2 * time.Second, Idle: 2 * time.Second, MinRate: 64 << 10, RateWindow: time.Second})
	if err != nil || rep.Kept != filepath.Join(keep, attesttest.ISOName) {
		t.Fatalf("%v\n%s", err, attesttest.ReportText(rep))
	}
}

// `mage verify` takes its limits from the configuration.
func TestVerifyURLLimitsFromConfig(t *testing.T) {
	env := map[string]string{"SOURCEOS_VERIFY_HEADER_TIMEOUT": "200ms", "OUT": t.TempDir(),
		"SOURCEOS_SIGN_PUBKEY": attesttest.NewKeys(t).Pub()}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	o := verify.FromConfig(cfg, silentServer(t)+"/r/"+attesttest.ISOName, &out)
	done := make(chan error, 1)
	go func() { done <- verify.Run(context.Background(), o) }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("SOURCEOS_VERIFY_HEADER_TIMEOUT=200ms: still waiting after 20s")
	}
	var te *verify.TimeoutError
	if !errors.As(err, &te) || te.Limit != verify.LimitHeader || !strings.Contains(err.Error(), "200ms") {
		t.Errorf("error %v, want the header timeout of 200ms", err)
	}
}
