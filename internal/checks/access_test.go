package checks_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/socioprophet/sourceos/internal/checks"
)

func keyLine(t *testing.T, pub any, comment string) string {
	t.Helper()
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + comment
}

func TestCheckSSHKey(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	ed := keyLine(t, edPub, " ops@example")
	edBlob := strings.Fields(ed)[1]
	ecBlob := strings.Fields(keyLine(t, &ec.PublicKey, ""))[1]
	cases := []struct {
		name, line, wantErr string
	}{
		{"ed25519 with comment", ed, ""},
		{"ed25519 without comment", "ssh-ed25519 " + edBlob, ""},
		{"placeholder of the repository", placeholderKey, ""},
		{"ecdsa", keyLine(t, &ec.PublicKey, " a b c"), ""},
		{"rsa 2048", keyLine(t, &rsa2048.PublicKey, ""), ""},
		{"rsa 1024", keyLine(t, &rsa1024.PublicKey, ""), "RSA key of 1024 bits"},
		{"empty", "", "expected \"<type> <base64 key> [comment]\""},
		{"type only", "ssh-ed25519", "expected"},
		{"two keys in one entry", ed + "\n" + ed, "line break"},
		{"carriage return", ed + "\r", "line break"},
		{"key options", `from="10.0.0.0/8" ` + ed, "unknown key type"},
		{"private key pasted", "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAABG5vbmU=", "unknown key type"},
		{"dsa", "ssh-dss AAAAB3NzaC1kc3MAAACBAP", "DSA keys are not accepted"},
		{"certificate", "ssh-ed25519-cert-v01@openssh.com " + edBlob, "unknown key type"},
		{"not base64", "ssh-ed25519 not*base64", "not base64"},
		{"truncated key data", "ssh-ed25519 " + edBlob[:40], "not a public key"},
		{"garbage key data", "ssh-ed25519 " + base64.StdEncoding.EncodeToString([]byte("hello world")), "not a public key"},
		{"type and data disagree", "ssh-ed25519 " + ecBlob, "is a ecdsa-sha2-nistp256 key, the line says ssh-ed25519"},
	}
	for _, c := range cases {
		err := checks.CheckSSHKey(c.line)
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.wantErr)
		}
	}
}

func FuzzCheckSSHKey(f *testing.F) {
	f.Add(placeholderKey)
	f.Add("ssh-dss AAAA")
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA")
	f.Fuzz(func(t *testing.T, line string) {
		if checks.CheckSSHKey(line) == nil && strings.ContainsAny(line, "\r\n") {
			t.Errorf("accepted a key with a line break: %q", line)
		}
	})
}

func TestCheckAccess(t *testing.T) {
	hc := checks.HostEntry{File: "hosts/h/default.nix"}
	admins := func(v string) json.RawMessage { return json.RawMessage(v) }
	good := func() *checks.Access {
		return &checks.Access{
			ConsoleOnly: admins(`false`), SSHD: admins(`true`),
			Admins:            admins(`[{"name":"ops","sshKeys":["` + placeholderKey + `"]}]`),
			Users:             []checks.AccessUser{{Name: "ops", Keys: []string{placeholderKey}}},
			TrustedInterfaces: []string{"lo"}, MeshInterface: "tailscale0",
			Where: map[string]checks.Position{"admins": {File: "hosts/h/default.nix", Line: 12}},
		}
	}
	cases := []struct {
		name   string
		mutate func(a *checks.Access)
		want   []string
	}{
		{"an admin with a key", func(*checks.Access) {}, nil},
		{"nobody", func(a *checks.Access) { a.Admins, a.Users = admins(`[]`), nil },
			[]string{"hosts/h/default.nix:12: h: login: nobody can log in: no user has an SSH key"}},
		{"nobody, console only", func(a *checks.Access) { a.Admins, a.Users, a.ConsoleOnly = admins(`[]`), nil, admins(`true`) }, nil},
		{"a user without keys does not count", func(a *checks.Access) { a.Users = []checks.AccessUser{{Name: "ops"}} },
			[]string{"h: login: nobody can log in"}},
		{"key files count", func(a *checks.Access) { a.Users = []checks.AccessUser{{Name: "ops", KeyFiles: 1}} }, nil},
		{"sshd off", func(a *checks.Access) { a.SSHD = admins(`false`) },
			[]string{"h: login: nobody can log in: users have SSH keys but services.openssh.enable is not true"}},
		{"sshd not set", func(a *checks.Access) { a.SSHD = nil }, []string{"services.openssh.enable is not true"}},
		{"broken user key", func(a *checks.Access) { a.Users[0].Keys = []string{"ssh-ed25519 AAAA"} },
			[]string{"h: users.users.ops.openssh.authorizedKeys.keys[0]: key data is not a public key", "h: login: nobody can log in"}},
		{"broken admin key", func(a *checks.Access) { a.Admins = admins(`[{"name":"ops","sshKeys":["ssh-rsa x"]}]`) },
			[]string{"h: sourceos.admins: [0] (ops): sshKeys[0]: key data is not base64"}},
		{"admin named root", func(a *checks.Access) { a.Admins = admins(`[{"name":"root","sshKeys":[]}]`) },
			[]string{"[0] (root): root is not an admin account"}},
		{"admin name not a user name", func(a *checks.Access) { a.Admins = admins(`[{"name":"Ops Team","sshKeys":[]}]`) },
			[]string{`[0]: name "Ops Team" is not a user name`}},
		{"admin declared twice", func(a *checks.Access) { a.Admins = admins(`[{"name":"ops","sshKeys":[]},{"name":"ops","sshKeys":[]}]`) },
			[]string{"[1] (ops): declared twice"}},
		{"admin with an unknown key", func(a *checks.Access) { a.Admins = admins(`[{"name":"ops","sshKey":"x"}]`) },
			[]string{`[0]: unknown key "sshKey"`}},
		{"admins not a list", func(a *checks.Access) { a.Admins = admins(`"ops"`) },
			[]string{`sourceos.admins: expected a list of { name, sshKeys }, found "ops"`}},
		{"mesh interface trusted", func(a *checks.Access) {
			a.TrustedInterfaces = []string{"lo", "tailscale0"}
			a.Where["trustedInterfaces"] = checks.Position{File: "modules/sourceos.nix", Line: 99}
		}, []string{"modules/sourceos.nix:99: h: networking.firewall.trustedInterfaces: the mesh interface tailscale0 is trusted"}},
		{"renamed mesh interface trusted", func(a *checks.Access) { a.MeshInterface, a.TrustedInterfaces = "mesh0", []string{"mesh0"} },
			[]string{"hosts/h/default.nix: h: networking.firewall.trustedInterfaces: the mesh interface mesh0 is trusted"}},
	}
	for _, c := range cases {
		a := good()
		c.mutate(a)
		var got []string
		for _, f := range checks.CheckAccess("h", hc, a) {
			got = append(got, f.String())
		}
		if c.want == nil && len(got) > 0 {
			t.Errorf("%s: want no failure, got %q", c.name, got)
		}
		for _, w := range c.want {
			if !containsLine(got, w) {
				t.Errorf("%s: no failure contains %q; got %q", c.name, w, got)
			}
		}
	}
}
