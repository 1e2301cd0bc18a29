package verify

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrAddress is wrapped by the error for a host or an address a fetch may
// not reach: an https URL that leads to this machine or a private network,
// an http one that leaves this machine.
var ErrAddress = errors.New("address refused")

// maxRedirects bounds the redirects one fetch follows.
const maxRedirects = 10

// hostRule is what every host a fetch reaches must be: the rule its first
// URL passed holds at every redirect and for every address dialled.
type hostRule int

const (
	// publicOnly is an https URL's rule: https at every hop, and only
	// addresses on the public internet.
	publicOnly hostRule = iota
	// loopbackOnly is an http URL's rule (a local mirror, the GCS
	// emulator): http at every hop, and only this machine.
	loopbackOnly
)

func (r hostRule) scheme() string {
	if r == loopbackOnly {
		return "http"
	}
	return "https"
}

// ruleFor is the rule of a URL's scheme; http only to a loopback host.
func ruleFor(u *url.URL) (hostRule, error) {
	switch u.Scheme {
	case "https":
		return publicOnly, publicOnly.checkHost(u.Hostname())
	case "http":
		if err := loopbackOnly.checkHost(u.Hostname()); err != nil {
			return 0, fmt.Errorf("plain http only to this machine (a local mirror or emulator); use https for %s", u.Host)
		}
		return loopbackOnly, nil
	}
	return 0, fmt.Errorf("scheme %q (want https or gs)", u.Scheme)
}

// nonPublic are the address ranges an https fetch never reaches, each
// with what it is. Loopback, private (RFC 1918, RFC 4193), link-local,
// multicast and unspecified addresses are netip's own tests (see
// checkAddr); IPv4-mapped IPv6 addresses are checked as IPv4.
var nonPublic = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" (RFC 791)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space, CGNAT (RFC 6598)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation (RFC 5737)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (RFC 2544)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation (RFC 5737)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation (RFC 5737)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved, broadcast (RFC 1112, RFC 919)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (RFC 8215)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation (RFC 3849)"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (RFC 3879)"},
}

// nat64 is the well-known NAT64 prefix: its addresses reach the IPv4
// address in their last 32 bits, which is checked instead.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// checkAddr is the address policy: nil when rule r lets a fetch reach ip.
func (r hostRule) checkAddr(ip netip.Addr) error {
	ip = ip.Unmap().WithZone("")
	if r == loopbackOnly {
		if ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%w: %s is not this machine (loopback), which plain http is limited to", ErrAddress, ip)
	}
	if what := nonPublicKind(ip); what != "" {
		return fmt.Errorf("%w: %s is %s, not a public address an https URL may reach", ErrAddress, ip, what)
	}
	return nil
}

// nonPublicKind says what ip is when it is not a public unicast address,
// "" when it is one.
func nonPublicKind(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "no address"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate() && ip.Is4():
		return "private (RFC 1918)"
	case ip.IsPrivate():
		return "unique local (RFC 4193)"
	case ip.IsLinkLocalUnicast():
		return "link-local (cloud metadata lives there)"
	case ip.IsMulticast():
		return "multicast"
	case nat64.Contains(ip):
		b := ip.As16()
		if what := nonPublicKind(netip.AddrFrom4([4]byte(b[12:]))); what != "" {
			return "NAT64 of " + what
		}
	}
	for _, n := range nonPublic {
		if n.prefix.Contains(ip) {
			return n.what
		}
	}
	return ""
}

// checkHost checks a URL's host before anything is looked up: an address
// by checkAddr, a name only under loopbackOnly, where it must be
// localhost. Under publicOnly a name passes here and every address it
// resolves to is checked when dialled (control).
func (r hostRule) checkHost(host string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		return r.checkAddr(ip)
	}
	if r == loopbackOnly && host != "localhost" {
		return fmt.Errorf("%w: %q is not this machine (loopback), which plain http is limited to", ErrAddress, host)
	}
	return nil
}

// checkRedirect holds a redirect to the first URL's rule: the same
// scheme, no credentials, a host checkHost allows, and at most
// maxRedirects of them.
func (r hostRule) checkRedirect(to *url.URL, hops int) error {
	switch {
	case hops > maxRedirects:
		return fmt.Errorf("%w: more than %d redirects", ErrRedirect, maxRedirects)
	case to.Scheme != r.scheme():
		return fmt.Errorf("%w: to %s (scheme %s to %s)", ErrRedirect, to.Redacted(), r.scheme(), to.Scheme)
	case to.User != nil:
		return fmt.Errorf("%w: to a URL with credentials", ErrRedirect)
	}
	if err := r.checkHost(to.Hostname()); err != nil {
		return fmt.Errorf("%w: to %s: %w", ErrRedirect, to.Redacted(), err)
	}
	return nil
}

// control checks the address a connection is about to be made to (the
// resolved one, whatever name led there): net.Dialer.Control.
func (r hostRule) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot tell where %s %s is", ErrAddress, network, address)
	}
	return r.checkAddr(ap.Addr())
}

// client is the HTTP client of rule r: no proxy (the address dialled is
// the server's own, so control sees it), no cookies, no credentials, and
// redirects held to r.
func (r hostRule) client() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = (&net.Dialer{KeepAlive: 30 * time.Second, Control: r.control}).DialContext
	return &http.Client{Transport: t, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		return r.checkRedirect(req.URL, len(via))
	}}
}
