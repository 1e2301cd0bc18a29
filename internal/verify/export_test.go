package verify

import (
	"bytes"
	"net/netip"
	"net/url"
	"strings"
)

// ruleOf is the rule an https (true) or http (false) URL is held to.
func ruleOf(https bool) hostRule {
	if https {
		return publicOnly
	}
	return loopbackOnly
}

// CheckAddr is the address policy of an https or http start.
func CheckAddr(https bool, addr string) error {
	return ruleOf(https).checkAddr(netip.MustParseAddr(addr))
}

// CheckDial is what the dialler's Control hook says of address.
func CheckDial(https bool, network, address string) error {
	return ruleOf(https).control(network, address, nil)
}

// CheckRedirect is the redirect policy of an https or http start, for the
// hops-th redirect.
func CheckRedirect(https bool, to string, hops int) error {
	u, err := url.Parse(to)
	if err != nil {
		panic(err)
	}
	return ruleOf(https).checkRedirect(u, hops)
}

// ProgressLine is what the progress line prints for name.
func ProgressLine(name string) string {
	var b bytes.Buffer
	p := newProgress(strings.NewReader("x"), &b, name, 1)
	p.finish()
	return b.String()
}
