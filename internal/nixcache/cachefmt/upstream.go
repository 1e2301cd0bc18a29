package cachefmt

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Upstreams answers whether an upstream cache already serves a path.
type Upstreams struct {
	client  *http.Client
	urls    []string
	timeout time.Duration
	errors  atomic.Int32
}

// maxUpstreamErrors turns the check off after this many failed look-ups.
const maxUpstreamErrors = 8

// ProbeUpstreams keeps the upstreams that answer within timeout, logging
// one line for each that does not.
func ProbeUpstreams(ctx context.Context, client *http.Client, urls []string, timeout time.Duration, log *slog.Logger) *Upstreams {
	u := &Upstreams{client: client, timeout: timeout}
	for _, raw := range urls {
		base := strings.TrimRight(raw, "/")
		code, err := u.request(ctx, http.MethodGet, base+"/nix-cache-info")
		if err != nil || code != http.StatusOK {
			log.Warn("upstream cache unreachable; pushing the paths it might serve", "upstream", base, "status", code, "err", err)
			continue
		}
		u.urls = append(u.urls, base)
	}
	return u
}

func (u *Upstreams) request(ctx context.Context, method, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Has reports whether some upstream serves the narinfo of hash.
func (u *Upstreams) Has(ctx context.Context, hash string) bool {
	if u == nil || u.errors.Load() >= maxUpstreamErrors {
		return false
	}
	for _, base := range u.urls {
		code, err := u.request(ctx, http.MethodHead, base+"/"+hash+".narinfo")
		if err != nil {
			u.errors.Add(1)
			continue
		}
		if code == http.StatusOK {
			return true
		}
	}
	return false
}

// Enabled says whether any upstream answered.
func (u *Upstreams) Enabled() bool { return u != nil && len(u.urls) > 0 }
