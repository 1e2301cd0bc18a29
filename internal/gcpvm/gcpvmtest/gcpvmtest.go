// Package gcpvmtest fakes what a GCP build VM talks to: the metadata server
// (through GCE_METADATA_HOST, which cloud.google.com/go/compute/metadata
// honours) and the Compute Engine API, which records the VM's self-delete
// call. Both run on loopback httptest servers for the length of a test.
package gcpvmtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Identity of the fake VM.
const (
	Project     = "sourceos-builds-prj"
	Zone        = "europe-west4-b"
	Name        = "sourceos-build-42"
	AccessToken = "ya29.fake-access-token-for-tests-0123456789"
)

// WantDelete is the DELETE call (method, path, Authorization) that deletes
// the fake VM.
const WantDelete = "DELETE /projects/" + Project + "/zones/" + Zone + "/instances/" + Name + " Bearer " + AccessToken

// VM is a fake metadata server and Compute API.
type VM struct {
	// Attrs are the instance attributes served.
	Attrs map[string]string
	// Hide lists metadata paths answered with 404 (e.g. "instance/name").
	Hide map[string]bool
	// Fail answers metadata paths with an HTTP error status.
	Fail map[string]int
	// DeleteStatus answers the DELETE calls in turn (default 200).
	DeleteStatus []int
	// ComputeURL is the base URL of the fake Compute API.
	ComputeURL string

	mu       sync.Mutex
	deletes  []string
	requests []string
}

// Start starts both servers, points GCE_METADATA_HOST at the metadata one
// and stops them at the end of the test.
func Start(t testing.TB, attrs map[string]string) *VM {
	t.Helper()
	v := &VM{Attrs: attrs, Hide: map[string]bool{}, Fail: map[string]int{}}
	md := httptest.NewServer(http.HandlerFunc(v.metadata))
	t.Cleanup(md.Close)
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(md.URL, "http://"))
	compute := httptest.NewServer(http.HandlerFunc(v.compute))
	t.Cleanup(compute.Close)
	v.ComputeURL = compute.URL
	return v
}

func (v *VM) metadata(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Metadata-Flavor") != "Google" {
		http.Error(w, "missing Metadata-Flavor", http.StatusForbidden)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/computeMetadata/v1/")
	v.mu.Lock()
	hidden, fail := v.Hide[path], v.Fail[path]
	v.requests = append(v.requests, r.Header.Get("User-Agent")+" "+r.URL.RequestURI())
	v.mu.Unlock()
	if fail != 0 {
		http.Error(w, "injected failure", fail)
		return
	}
	fixed := map[string]string{
		"project/project-id":                      Project,
		"instance/zone":                           "projects/123456/zones/" + Zone,
		"instance/name":                           Name,
		"instance/service-accounts/default/token": `{"access_token":"` + AccessToken + `","expires_in":3599,"token_type":"Bearer"}`,
	}
	if val, ok := fixed[path]; ok && !hidden {
		_, _ = w.Write([]byte(val))
		return
	}
	if path == "instance/attributes/" && r.URL.Query().Get("recursive") == "true" {
		_ = json.NewEncoder(w).Encode(v.Attrs)
		return
	}
	if name, ok := strings.CutPrefix(path, "instance/attributes/"); ok {
		if val, ok := v.Attrs[name]; ok {
			_, _ = w.Write([]byte(val))
			return
		}
	}
	http.NotFound(w, r)
}

func (v *VM) compute(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.deletes = append(v.deletes, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
	code := http.StatusOK
	if len(v.DeleteStatus) > 0 {
		code, v.DeleteStatus = v.DeleteStatus[0], v.DeleteStatus[1:]
	}
	w.WriteHeader(code)
	_, _ = w.Write([]byte(`{"kind":"compute#operation","status":"RUNNING"}`))
}

// Requests returns the metadata requests received, as "User-Agent URI".
func (v *VM) Requests() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.requests...)
}

// DeleteCalls returns the calls the Compute API received, as
// "METHOD path Authorization".
func (v *VM) DeleteCalls() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.deletes...)
}
