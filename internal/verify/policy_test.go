package verify_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/verify"
)

// An https URL reaches public addresses only: never this machine, a
// private or link-local network (the cloud metadata server), CGNAT,
// unspecified, multicast or reserved addresses, however written (IPv4
// in IPv6, NAT64). An http URL reaches this machine only.
func TestAddressPolicy(t *testing.T) {
	refusedHTTPS := []string{
		"127.0.0.1", "127.255.255.254", "::1", "0.0.0.0", "::", "0.1.2.3",
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "fc00::1", "fd12:3456::1",
		"169.254.169.254", "169.254.0.1", "fe80::1", "fe80::1%eth0",
		"100.64.0.1", "100.127.255.255",
		"224.0.0.1", "239.255.255.250", "ff02::1", "ff0e::1", "255.255.255.255", "240.0.0.1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
		"64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b:1::1",
		"192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1", "192.0.0.8", "2001:db8::1", "fec0::1",
	}
	allowedHTTPS := []string{
		"8.8.8.8", "1.1.1.1", "142.250.74.123", "11.0.0.1", "100.63.255.255", "100.128.0.0",
		"172.15.255.255", "172.32.0.0", "192.169.0.1", "169.253.255.255", "169.255.0.1",
		"2607:f8b0:4004:c1b::80", "64:ff9b::808:808", "::ffff:8.8.8.8",
	}
	for _, a := range refusedHTTPS {
		if err := verify.CheckAddr(true, a); !errors.Is(err, verify.ErrAddress) {
			t.Errorf("https to %s: %v, want refused", a, err)
		}
	}
	for _, a := range allowedHTTPS {
		if err := verify.CheckAddr(true, a); err != nil {
			t.Errorf("https to %s: %v", a, err)
		}
	}
	for _, a := range []string{"127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1"} {
		if err := verify.CheckAddr(false, a); err != nil {
			t.Errorf("http to %s: %v", a, err)
		}
	}
	for _, a := range []string{"10.0.0.1", "192.168.1.1", "169.254.169.254", "8.8.8.8", "0.0.0.0", "::", "fd00::1", "2607:f8b0::1"} {
		if err := verify.CheckAddr(false, a); !errors.Is(err, verify.ErrAddress) {
			t.Errorf("http to %s: %v, want refused", a, err)
		}
	}
	if err := verify.CheckAddr(true, "169.254.169.254"); err == nil || !strings.Contains(err.Error(), "link-local") {
		t.Errorf("the metadata address is refused without saying why: %v", err)
	}
}

// The dialler checks the address it connects to, whatever name led there.
func TestDialPolicy(t *testing.T) {
	for _, tc := range []struct {
		https   bool
		address string
		ok      bool
	}{
		{true, "8.8.8.8:443", true},
		{true, "[2607:f8b0:4004:c1b::80]:443", true},
		{true, "127.0.0.1:443", false},
		{true, "[::1]:443", false},
		{true, "169.254.169.254:80", false},
		{true, "[fe80::1%eth0]:443", false},
		{true, "not-an-address", false},
		{false, "127.0.0.1:8080", true},
		{false, "[::1]:8080", true},
		{false, "192.168.1.1:80", false},
	} {
		err := verify.CheckDial(tc.https, "tcp", tc.address)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, verify.ErrAddress)) {
			t.Errorf("https=%v dial %s: %v, want ok=%v", tc.https, tc.address, err, tc.ok)
		}
	}
}

// Every redirect is held to the first URL's rule: the same scheme, no
// credentials, a host that rule allows, at most ten of them.
func TestRedirectPolicy(t *testing.T) {
	for _, tc := range []struct {
		https bool
		to    string
		hops  int
		ok    bool
	}{
		{true, "https://storage.googleapis.com/b/a.iso", 1, true},
		{true, "https://mirror.example/a.iso", 10, true},
		{true, "https://mirror.example/a.iso", 11, false},
		{true, "http://mirror.example/a.iso", 1, false},
		{true, "https://user:pw@mirror.example/a.iso", 1, false},
		{true, "https://127.0.0.1/a.iso", 1, false},
		{true, "https://[::1]:8443/a.iso", 1, false},
		{true, "https://10.1.2.3/a.iso", 1, false},
		{true, "https://192.168.0.10/a.iso", 1, false},
		{true, "https://[fd00::2]/a.iso", 1, false},
		{true, "https://169.254.169.254/computeMetadata/v1/", 1, false},
		{true, "https://100.64.0.1/a.iso", 1, false},
		{true, "https://[::ffff:7f00:1]/a.iso", 1, false},
		{false, "http://127.0.0.1:8080/a.iso", 1, true},
		{false, "http://localhost:8080/a.iso", 1, true},
		{false, "http://[::1]:8080/a.iso", 1, true},
		{false, "http://mirror.example/a.iso", 1, false},
		{false, "http://localhost.mirror.example/a.iso", 1, false},
		{false, "http://10.0.0.1/a.iso", 1, false},
		{false, "http://169.254.169.254/latest/meta-data/", 1, false},
		{false, "https://127.0.0.1:8443/a.iso", 1, false},
		{false, "http://127.0.0.1/a.iso", 11, false},
	} {
		err := verify.CheckRedirect(tc.https, tc.to, tc.hops)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, verify.ErrRedirect)) {
			t.Errorf("https=%v redirect %d to %s: %v, want ok=%v", tc.https, tc.hops, tc.to, err, tc.ok)
		}
		if strings.Contains(tc.to, "pw@") && err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("the error quotes the password: %v", err)
		}
	}
}
