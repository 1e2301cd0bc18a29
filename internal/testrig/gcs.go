package testrig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// GCS is a fake-gcs-server running in process on a loopback port. It serves
// the JSON API (for the Go client, through STORAGE_EMULATOR_HOST) and public
// object URLs http://HOST/<bucket>/<object> (for Nix and curl).
type GCS struct {
	Server *fakestorage.Server
	// Host is host:port of the server.
	Host string
}

// StartGCS starts the emulator with the given buckets, points
// STORAGE_EMULATOR_HOST at it for the rest of the test, and stops it at the
// end of the test.
func StartGCS(t testing.TB, buckets ...string) *GCS {
	t.Helper()
	// The emulator takes its port up front (its public URLs name it): a
	// port found free can be taken by another test process before the
	// emulator binds it, so a bind that finds it taken tries another.
	var srv *fakestorage.Server
	var host string
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var err error
		srv, err = fakestorage.NewServerWithOptions(fakestorage.Options{
			Scheme:     "http",
			Host:       "127.0.0.1",
			Port:       uint16(port),
			PublicHost: host,
			Writer:     io.Discard,
		})
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 4 {
			t.Fatalf("start fake GCS: %v", err)
		}
	}
	t.Cleanup(srv.Stop)
	for _, b := range buckets {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	t.Setenv("STORAGE_EMULATOR_HOST", host)
	return &GCS{Server: srv, Host: host}
}

// URL is the public HTTP URL of object in bucket.
func (g *GCS) URL(bucket, object string) string {
	return fmt.Sprintf("http://%s/%s/%s", g.Host, bucket, object)
}

// Client returns a GCS client talking to the emulator.
func (g *GCS) Client(t testing.TB) *storage.Client {
	t.Helper()
	c, err := storage.NewClient(context.Background())
	if err != nil {
		t.Fatalf("GCS client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Get fetches a public object over plain HTTP, the way Nix does.
func (g *GCS) Get(t testing.TB, bucket, object string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(g.URL(bucket, object))
	if err != nil {
		t.Fatalf("GET %s: %v", g.URL(bucket, object), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", g.URL(bucket, object), err)
	}
	return resp.StatusCode, b
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
