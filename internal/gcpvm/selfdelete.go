package gcpvm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
)

// ComputeURL is the Compute Engine REST API base.
const ComputeURL = "https://compute.googleapis.com/compute/v1"

// tokenSuffix is the metadata path of the VM's service account token.
const tokenSuffix = "instance/service-accounts/default/token"

// deleter deletes a VM through the Compute Engine API with the VM's own
// service account token.
type deleter struct {
	md         Metadata
	hc         *http.Client
	base       string
	attempts   int
	retryDelay time.Duration
}

// InstanceURL is the Compute API URL of an instance.
func InstanceURL(base, project, zone, name string) string {
	return fmt.Sprintf("%s/projects/%s/zones/%s/instances/%s",
		strings.TrimRight(base, "/"), url.PathEscape(project), url.PathEscape(zone), url.PathEscape(name))
}

// token fetches an access token for the VM's default service account.
func token(ctx context.Context, md Metadata) (config.Secret, error) {
	raw, ok, err := md.Get(ctx, tokenSuffix)
	if err != nil {
		return config.Secret{}, err
	}
	if !ok {
		return config.Secret{}, fmt.Errorf("metadata %s is not set: the VM has no service account", tokenSuffix)
	}
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(raw), &t); err != nil || t.AccessToken == "" {
		return config.Secret{}, fmt.Errorf("metadata %s: no access_token in the answer", tokenSuffix)
	}
	return config.NewSecret(t.AccessToken), nil
}

// delete asks Compute Engine to delete the instance, retrying throttling
// and server errors a few times. A 404 means it is already going away.
func (d deleter) delete(ctx context.Context, in *Instance) error {
	tok, err := token(ctx, d.md)
	if err != nil {
		return fmt.Errorf("delete instance: %w", err)
	}
	target := InstanceURL(d.base, in.Project, in.Zone, in.Name)
	var last error
	for i := 0; i < d.attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("delete instance %s: %w (last: %v)", in.Name, ctx.Err(), last)
			case <-time.After(d.retryDelay << (i - 1)):
			}
		}
		retry, err := d.once(ctx, target, tok)
		if err == nil {
			return nil
		}
		last = err
		if !retry {
			break
		}
	}
	return fmt.Errorf("delete instance %s: %w", in.Name, last)
}

// once sends one DELETE; retry says whether another attempt may help.
func (d deleter) once(ctx context.Context, target string, tok config.Secret) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, target, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	resp, err := d.hc.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	switch {
	case resp.StatusCode/100 == 2, resp.StatusCode == http.StatusNotFound:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return true, fmt.Errorf("DELETE %s: %s", target, resp.Status)
	}
	return false, fmt.Errorf("DELETE %s: %s: %s", target, resp.Status, strings.TrimSpace(string(body)))
}
