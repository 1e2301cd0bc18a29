package checks

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Access is how a host can be reached, as an evaluation found it: the
// login rule and the mesh firewall rule are checked against it for every
// host, in both modes.
type Access struct {
	// ConsoleOnly is sourceos.consoleOnly (null when not defined).
	ConsoleOnly json.RawMessage `json:"consoleOnly"`
	// SSHD is services.openssh.enable (null when not defined).
	SSHD json.RawMessage `json:"sshd"`
	// Admins is sourceos.admins (null when not defined).
	Admins json.RawMessage `json:"admins"`
	// Users are the users.users entries with SSH keys (what the host's
	// sshd accepts: sourceos.admins become such users).
	Users []AccessUser `json:"users"`
	// TrustedInterfaces is networking.firewall.trustedInterfaces.
	TrustedInterfaces []string `json:"trustedInterfaces"`
	// MeshInterface is services.tailscale.interfaceName.
	MeshInterface string `json:"meshInterface"`
	// Where locates the definitions of sourceos.admins and of
	// networking.firewall.trustedInterfaces (module-level evaluation).
	Where map[string]Position `json:"where,omitempty"`
}

// AccessUser is one user with SSH keys.
type AccessUser struct {
	Name string   `json:"name"`
	Keys []string `json:"keys"`
	// KeyFiles counts openssh.authorizedKeys.keyFiles (read at build
	// time, not checked here).
	KeyFiles int `json:"keyFiles"`
}

// Position is a place in the repository.
type Position struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

// Admin is one entry of sourceos.admins.
type Admin struct {
	Name    string   `json:"name"`
	SSHKeys []string `json:"sshKeys"`
}

var userName = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`)

// CheckAccess holds a host to the login and mesh rules: somebody can log
// in (a user with an SSH key and sshd on) unless the host declares
// sourceos.consoleOnly; every admin and key is well formed; the mesh
// interface is not a trusted interface.
func CheckAccess(host string, hc HostEntry, a *Access) []Failure {
	if a == nil {
		return []Failure{{Check: CheckHosts, File: hc.File, Subject: host + ": access", Message: "evaluation returned no access facts"}}
	}
	at := func(key string) (string, int) {
		if p, ok := a.Where[key]; ok && p.File != "" {
			return p.File, p.Line
		}
		return hc.File, 0
	}
	fail := func(key, subject, msg string) Failure {
		f, l := at(key)
		return Failure{Check: CheckHosts, File: f, Line: l, Subject: host + ": " + subject, Message: msg}
	}
	var out []Failure
	for _, m := range checkAdmins(a.Admins) {
		out = append(out, fail("admins", "sourceos.admins", m))
	}
	usable := 0
	for _, u := range a.Users {
		good := u.KeyFiles
		for i, k := range u.Keys {
			if err := CheckSSHKey(k); err != nil {
				out = append(out, fail("admins", fmt.Sprintf("users.users.%s.openssh.authorizedKeys.keys[%d]", u.Name, i), err.Error()))
				continue
			}
			good++
		}
		if good > 0 {
			usable++
		}
	}
	switch {
	case isTrue(a.ConsoleOnly):
	case usable == 0:
		out = append(out, fail("admins", "login", "nobody can log in: no user has an SSH key; declare sourceos.admins with keys, or sourceos.consoleOnly = true for a host run at its console"))
	case !isTrue(a.SSHD):
		out = append(out, fail("admins", "login", "nobody can log in: users have SSH keys but services.openssh.enable is not true"))
	}
	mesh := a.MeshInterface
	if mesh == "" {
		mesh = "tailscale0"
	}
	if slices.Contains(a.TrustedInterfaces, mesh) {
		out = append(out, fail("trustedInterfaces", "networking.firewall.trustedInterfaces",
			"the mesh interface "+mesh+" is trusted, so every mesh peer reaches every port; open the ports the host serves with sourceos.mesh.allowedTCPPorts / allowedUDPPorts"))
	}
	return out
}

// checkAdmins checks the shape of sourceos.admins: a list of { name,
// sshKeys } with user names NixOS accepts and well-formed keys.
func checkAdmins(raw json.RawMessage) []string {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return []string{"expected a list of { name, sshKeys }, found " + compactJSON(raw)}
	}
	var out []string
	seen := map[string]bool{}
	for i, e := range entries {
		var a Admin
		if err := strictDecode(e, &a, fmt.Sprintf("[%d]", i)); err != nil {
			out = append(out, err.Error())
			continue
		}
		where := fmt.Sprintf("[%d] (%s)", i, a.Name)
		switch {
		case !userName.MatchString(a.Name) || len(a.Name) > 31:
			out = append(out, fmt.Sprintf("[%d]: name %q is not a user name (lower case letters, digits, _ and -, at most 31)", i, a.Name))
		case a.Name == "root":
			out = append(out, where+": root is not an admin account; admins log in as themselves")
		case seen[a.Name]:
			out = append(out, where+": declared twice")
		}
		seen[a.Name] = true
		for j, k := range a.SSHKeys {
			if err := CheckSSHKey(k); err != nil {
				out = append(out, fmt.Sprintf("%s: sshKeys[%d]: %v", where, j, err))
			}
		}
	}
	return out
}

func isTrue(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("true")) }

// sshKeyTypes are the public key types an authorized_keys line may have
// on nixos-25.05 (OpenSSH 10: no DSA).
var sshKeyTypes = []string{
	ssh.KeyAlgoED25519, ssh.KeyAlgoRSA,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256,
}

// MinRSABits is the smallest RSA modulus a key may have.
const MinRSABits = 2048

// CheckSSHKey checks one authorized key entry: a single line
// "<type> <base64 key> [comment]" whose key data decodes to a public key
// of that type. Options (from="…"), certificates, DSA keys, RSA keys under
// MinRSABits and anything that is not one key are refused.
func CheckSSHKey(line string) error {
	if strings.ContainsAny(line, "\r\n") {
		return fmt.Errorf("holds a line break (one key per entry)")
	}
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return fmt.Errorf("expected \"<type> <base64 key> [comment]\", found %q", shorten(line))
	}
	typ := fields[0]
	switch {
	case typ == "ssh-dss":
		return fmt.Errorf("DSA keys are not accepted (OpenSSH 10 in nixos-25.05 dropped them)")
	case !slices.Contains(sshKeyTypes, typ):
		return fmt.Errorf("unknown key type %q (key options and certificates are not accepted)", shorten(typ))
	}
	blob, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil {
		return fmt.Errorf("key data is not base64")
	}
	pk, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return fmt.Errorf("key data is not a public key: %v", err)
	}
	if pk.Type() != typ {
		return fmt.Errorf("key data is a %s key, the line says %s", pk.Type(), typ)
	}
	if c, ok := pk.(ssh.CryptoPublicKey); ok {
		if r, ok := c.CryptoPublicKey().(*rsa.PublicKey); ok && r.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key of %d bits; at least %d", r.N.BitLen(), MinRSABits)
		}
	}
	return nil
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
