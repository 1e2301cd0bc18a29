package signature_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/testrig"
)

var when = time.Unix(1767225600, 0)

// minisignCLI runs the real minisign with stdin, returning combined output.
func minisignCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testrig.RequireTool(t, "minisign"), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := minisignCLI(t, stdin, args...)
	if err != nil {
		t.Fatalf("minisign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b2(p []byte) []byte { h := blake2b.Sum512(p); return h[:] }

func generate(t *testing.T, password string) *signature.KeyPair {
	t.Helper()
	kp, err := signature.Generate(signature.GenerateOptions{Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func load(t *testing.T, contents []byte, password string) *signature.SecretKey {
	t.Helper()
	k, err := signature.ParseSecretKey(contents, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Wipe)
	return k
}

func signed(t *testing.T, k *signature.SecretKey, msg []byte, file string) []byte {
	t.Helper()
	sig, err := k.SignDigest(b2(msg), signature.Comment{Timestamp: when, File: file, BuildID: "build-42"})
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// The minisign CLI verifies our prehashed signatures, with the key given as
// the RW… string and as a .pub file, and requiring prehashing (-H).
func TestCLIVerifiesOurSignatures(t *testing.T) {
	dir := t.TempDir()
	kp := generate(t, "")
	k := load(t, kp.SecretKey, "")
	msg := bytes.Repeat([]byte("sourceos iso bytes\n"), 100000)
	file := writeFile(t, dir, "sourceos-desktop-x86_64.iso", msg)
	writeFile(t, dir, "sourceos-desktop-x86_64.iso.minisig", signed(t, k, msg, "sourceos-desktop-x86_64.iso"))
	pub := writeFile(t, dir, "minisign.pub", kp.PublicKey)

	out := mustCLI(t, "", "-V", "-H", "-m", file, "-P", kp.Public.String())
	if !strings.Contains(out, "timestamp:1767225600\tfile:sourceos-desktop-x86_64.iso\tbuild:build-42\thashed") {
		t.Errorf("CLI shows another trusted comment:\n%s", out)
	}
	mustCLI(t, "", "-V", "-m", file, "-p", pub)

	other := generate(t, "")
	if out, err := minisignCLI(t, "", "-V", "-m", file, "-P", other.Public.String()); err == nil {
		t.Errorf("CLI accepted the signature with another key:\n%s", out)
	}
	writeFile(t, dir, "sourceos-desktop-x86_64.iso", append(msg, 'x'))
	if out, err := minisignCLI(t, "", "-V", "-m", file, "-p", pub); err == nil {
		t.Errorf("CLI accepted a changed file:\n%s", out)
	}
}

// We verify what the CLI signs: prehashed by default, legacy (-l) only when
// allowed, and we catch a changed file.
func TestWeVerifyCLISignatures(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, "", "-G", "-W", "-p", filepath.Join(dir, "k.pub"), "-s", filepath.Join(dir, "k.key"))
	pub, err := signature.ParsePublicKey(string(readFile(t, filepath.Join(dir, "k.pub"))))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("an artifact\n")
	file := writeFile(t, dir, "a.iso", msg)

	mustCLI(t, "", "-S", "-W", "-s", filepath.Join(dir, "k.key"), "-m", file, "-t", "timestamp:1\tfile:a.iso\thashed")
	sig := readFile(t, file+".minisig")
	s, err := signature.Verify(pub, sig, b2(msg), signature.VerifyOptions{File: "a.iso"})
	if err != nil {
		t.Fatalf("CLI signature rejected: %v", err)
	}
	if !s.Prehashed() {
		t.Error("CLI default signature not prehashed")
	}
	if _, err := signature.Verify(pub, sig, b2([]byte("another artifact\n")), signature.VerifyOptions{}); !errors.Is(err, signature.ErrBadSignature) {
		t.Errorf("changed file: %v", err)
	}
	// The bare RW… line loads too.
	line := strings.Split(strings.TrimSpace(string(readFile(t, filepath.Join(dir, "k.pub")))), "\n")[1]
	if p2, err := signature.ParsePublicKey(line); err != nil || !p2.Equal(pub) {
		t.Errorf("RW line: %v", err)
	}

	mustCLI(t, "", "-S", "-l", "-W", "-s", filepath.Join(dir, "k.key"), "-m", file)
	legacy := readFile(t, file+".minisig")
	if _, err := signature.Verify(pub, legacy, b2(msg), signature.VerifyOptions{}); !errors.Is(err, signature.ErrLegacy) {
		t.Errorf("legacy signature: %v, want ErrLegacy", err)
	}
	if _, err := signature.Verify(pub, legacy, nil, signature.VerifyOptions{AllowLegacy: true, Message: msg}); err != nil {
		t.Errorf("allowed legacy signature rejected: %v", err)
	}
	if _, err := signature.Verify(pub, legacy, nil, signature.VerifyOptions{AllowLegacy: true, Message: []byte("x")}); !errors.Is(err, signature.ErrBadSignature) {
		t.Errorf("allowed legacy signature of another file: %v", err)
	}
}

// Keys made by the CLI, plain and password-encrypted, sign for us and the
// CLI verifies the result.
func TestCLIKeysSign(t *testing.T) {
	const password = "correct horse battery"
	for _, tc := range []struct {
		name, stdin, password string
		args                  []string
	}{
		{"plain", "", "", []string{"-W"}},
		{"encrypted", password + "\n" + password + "\n", password, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pubPath, keyPath := filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key")
			mustCLI(t, tc.stdin, append([]string{"-G", "-p", pubPath, "-s", keyPath}, tc.args...)...)
			k := load(t, readFile(t, keyPath), tc.password)
			pub, err := signature.ParsePublicKey(string(readFile(t, pubPath)))
			if err != nil {
				t.Fatal(err)
			}
			if !k.Public().Equal(pub) {
				t.Fatalf("loaded key %s does not match the CLI's public key %s", k.ID(), pub.ID)
			}
			msg := []byte("signed with a CLI key\n")
			file := writeFile(t, dir, "f.bin", msg)
			writeFile(t, dir, "f.bin.minisig", signed(t, k, msg, "f.bin"))
			mustCLI(t, "", "-V", "-H", "-m", file, "-p", pubPath)
			if tc.password == "" {
				return
			}
			if _, err := signature.ParseSecretKey(readFile(t, keyPath), "wrong"); !errors.Is(err, signature.ErrWrongPassword) {
				t.Errorf("wrong password: %v", err)
			}
			if _, err := signature.ParseSecretKey(readFile(t, keyPath), ""); !errors.Is(err, signature.ErrPasswordRequired) {
				t.Errorf("no password: %v", err)
			}
		})
	}
}

// Keys we generate load in the CLI, which signs with them; we verify.
func TestOurKeysLoadInCLI(t *testing.T) {
	const password = "pa55word"
	for _, tc := range []struct {
		name, password, stdin string
		args                  []string
	}{
		{"plain", "", "", []string{"-W"}},
		{"encrypted", password, password + "\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			kp := generate(t, tc.password)
			keyPath := filepath.Join(dir, "k.key")
			if err := signature.WriteSecretKey(keyPath, kp.SecretKey); err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(keyPath); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("secret key mode: %v %v", st.Mode(), err)
			}
			if err := signature.WriteSecretKey(keyPath, kp.SecretKey); !errors.Is(err, signature.ErrExists) {
				t.Errorf("overwrite: %v", err)
			}
			pubPath := writeFile(t, dir, "k.pub", kp.PublicKey)
			msg := []byte("signed by the CLI with our key\n")
			file := writeFile(t, dir, "f.bin", msg)
			mustCLI(t, tc.stdin, append([]string{"-S", "-s", keyPath, "-m", file}, tc.args...)...)
			mustCLI(t, "", "-V", "-m", file, "-p", pubPath)
			if _, err := signature.Verify(kp.Public, readFile(t, file+".minisig"), b2(msg), signature.VerifyOptions{}); err != nil {
				t.Error(err)
			}
			if k := load(t, kp.SecretKey, tc.password); !k.Public().Equal(kp.Public) {
				t.Error("generated secret key does not match its public key")
			}
		})
	}
}

// flipLine flips one bit of byte at of a .minisig line; base64 lines are
// flipped in their decoded bytes, so the file stays well-formed.
func flipLine(sig []byte, line, at int) []byte {
	lines := strings.Split(string(sig), "\n")
	raw, err := base64.StdEncoding.DecodeString(lines[line])
	if line == 2 || err != nil {
		b := []byte(lines[line])
		b[at] ^= 0x01
		lines[line] = string(b)
	} else {
		raw[at] ^= 0x01
		lines[line] = base64.StdEncoding.EncodeToString(raw)
	}
	return []byte(strings.Join(lines, "\n"))
}

// Each kind of tampering is caught by its own error.
func TestVerifyCatchesTampering(t *testing.T) {
	kp := generate(t, "")
	k := load(t, kp.SecretKey, "")
	msg := []byte("artifact")
	good := signed(t, k, msg, "a.iso")
	if _, err := signature.Verify(kp.Public, good, b2(msg), signature.VerifyOptions{File: "a.iso"}); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	other := generate(t, "")
	// Re-sign the comment with a newline smuggled in.
	s, _ := signature.ParseSignature(good)
	s.TrustedComment = "timestamp:1\tfile:a.iso\x07"

	for _, tc := range []struct {
		name    string
		pub     signature.PublicKey
		sig     []byte
		msg     []byte
		file    string
		wantErr error
	}{
		{"flipped artifact byte", kp.Public, good, []byte("artifacT"), "a.iso", signature.ErrBadSignature},
		{"flipped signature byte", kp.Public, flipLine(good, 1, 20), msg, "a.iso", signature.ErrBadSignature},
		{"flipped trusted comment byte", kp.Public, flipLine(good, 2, len("trusted comment: ")+3), msg, "a.iso", signature.ErrBadComment},
		{"renamed artifact", kp.Public, good, msg, "b.iso", signature.ErrWrongFile},
		{"different public key", other.Public, good, msg, "a.iso", signature.ErrKeyMismatch},
		{"unprintable trusted comment", kp.Public, s.Marshal(), msg, "a.iso", signature.ErrUnprintable},
		{"not a signature", kp.Public, []byte("hello\n"), msg, "a.iso", signature.ErrSignatureFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := signature.Verify(tc.pub, tc.sig, b2(tc.msg), signature.VerifyOptions{File: tc.file})
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
	// Same key id, different key material: the signature check catches it.
	forged := signature.PublicKey{ID: kp.Public.ID, Key: other.Public.Key}
	if _, err := signature.Verify(forged, good, b2(msg), signature.VerifyOptions{}); !errors.Is(err, signature.ErrBadSignature) {
		t.Errorf("forged key id: %v", err)
	}
}

func TestCommentRejectsUnsafeValues(t *testing.T) {
	k := load(t, generate(t, "").SecretKey, "")
	for _, c := range []signature.Comment{
		{File: "a\nb"}, {File: "a\tb"}, {File: "a", BuildID: "x\ty"}, {File: "a", BuildID: "\x1b[31m"}, {File: ""},
	} {
		if _, err := k.SignDigest(b2(nil), c); err == nil {
			t.Errorf("%q signed", c.String())
		}
	}
	if _, err := k.SignDigest([]byte("short"), signature.Comment{File: "a"}); err == nil {
		t.Error("short digest signed")
	}
	c := signature.Comment{Timestamp: when, File: "a.iso"}
	if got := c.String(); got != "timestamp:1767225600\tfile:a.iso\thashed" {
		t.Errorf("comment without build: %q", got)
	}
}

func TestKeyErrors(t *testing.T) {
	for _, in := range []string{"", "untrusted comment: x\n", "RWQnotbase64!!", "untrusted comment: x\nAAAA\n"} {
		if _, err := signature.ParseSecretKey([]byte(in), ""); !errors.Is(err, signature.ErrKeyFormat) {
			t.Errorf("secret %q: %v", in, err)
		}
		if _, err := signature.ParsePublicKey(in); !errors.Is(err, signature.ErrKeyFormat) {
			t.Errorf("public %q: %v", in, err)
		}
	}
	kp := generate(t, "")
	k := load(t, kp.SecretKey, "")
	secret := strings.Split(string(kp.SecretKey), "\n")[1]
	for _, s := range []string{k.String(), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if strings.Contains(s, secret[60:90]) {
			t.Errorf("key material printed: %s", s)
		}
	}
}

func TestEnvelope(t *testing.T) {
	kp := generate(t, "")
	k := load(t, kp.SecretKey, "")
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1"}`)
	env, err := k.SignEnvelope(signature.PayloadTypeInToto, payload)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env), `"keyid": "`+kp.Public.ID.Hex()+`"`) || len(kp.Public.ID.Hex()) != 16 {
		t.Errorf("keyid missing or malformed:\n%s", env)
	}
	got, err := signature.VerifyEnvelope(kp.Public, env, signature.PayloadTypeInToto)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("round trip: %v %q", err, got)
	}
	if _, err := signature.VerifyEnvelope(kp.Public, env, "application/json"); !errors.Is(err, signature.ErrPayloadType) {
		t.Errorf("payload type: %v", err)
	}
	if _, err := signature.VerifyEnvelope(generate(t, "").Public, env, signature.PayloadTypeInToto); !errors.Is(err, signature.ErrNoSignature) {
		t.Errorf("other key: %v", err)
	}
	e, _, _ := signature.ParseEnvelope(env)
	e.Payload = e.Payload[:10] + flip(e.Payload[10]) + e.Payload[11:]
	if err := e.VerifySignature(kp.Public, mustDecode(t, e)); !errors.Is(err, signature.ErrNoSignature) {
		t.Errorf("tampered payload: %v", err)
	}
	e2, p2, _ := signature.ParseEnvelope(env)
	e2.PayloadType = "application/vnd.in-toto+jsoN"
	if err := e2.VerifySignature(kp.Public, p2); !errors.Is(err, signature.ErrNoSignature) {
		t.Errorf("payload type is not covered by the signature: %v", err)
	}
	if _, _, err := signature.ParseEnvelope([]byte("{")); !errors.Is(err, signature.ErrEnvelopeFormat) {
		t.Errorf("bad JSON: %v", err)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func mustDecode(t *testing.T, e *signature.Envelope) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An envelope another parser could read differently is refused: keys
// given twice or in another case, members DSSE does not define, and
// base64 that does not decode one way only.
func TestParseEnvelopeIsStrict(t *testing.T) {
	kp := generate(t, "")
	k := load(t, kp.SecretKey, "")
	env, err := k.SignEnvelope(signature.PayloadTypeInToto, []byte(`{"_type":"https://in-toto.io/Statement/v1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := signature.ParseEnvelope(env); err != nil {
		t.Fatalf("our own envelope: %v", err)
	}
	forged := base64.StdEncoding.EncodeToString([]byte(`{"forged":true}`))
	s := string(env)
	e, _, _ := signature.ParseEnvelope(env)
	p64 := e.Payload
	for name, doc := range map[string]string{
		"duplicate payload":         strings.Replace(s, `"payload":`, `"payload": "`+forged+`", "payload":`, 1),
		"case-variant payload":      strings.Replace(s, `"payload":`, `"Payload": "`+forged+`", "payload":`, 1),
		"case-variant payload only": strings.Replace(s, `"payload":`, `"PAYLOAD":`, 1),
		"case-variant payloadType":  strings.Replace(s, `"payloadType":`, `"payloadtype": "text/plain", "payloadType":`, 1),
		"duplicate signatures":      strings.Replace(s, `"signatures":`, `"signatures": [], "signatures":`, 1),
		"unknown top-level member":  strings.Replace(s, `"payloadType":`, `"payloadHash": "x", "payloadType":`, 1),
		"case-variant keyid":        strings.Replace(s, `"keyid":`, `"keyID": "0000000000000000", "keyid":`, 1),
		"unknown signature member":  strings.Replace(s, `"keyid":`, `"cert": "x", "keyid":`, 1),
		"second envelope after":     s + s,
		"no payload":                strings.Replace(s, `"payload":`, `"payloadX":`, 1),
		"non-canonical base64":      strings.Replace(s, p64, nonCanonical(t, p64), 1),
		"signature not base64":      strings.Replace(s, `"sig": "`, `"sig": "*`, 1),
	} {
		if doc == s {
			t.Fatalf("%s: mutation did not change the envelope", name)
		}
		if _, _, err := signature.ParseEnvelope([]byte(doc)); !errors.Is(err, signature.ErrEnvelopeFormat) {
			t.Errorf("%s: ParseEnvelope = %v, want ErrEnvelopeFormat", name, err)
		}
	}
}

// nonCanonical sets padding bits base64 decoders other than a strict one
// ignore, so the string decodes to the same bytes as b64.
func nonCanonical(t *testing.T, b64 string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	end := strings.TrimRight(b64, "=")
	if len(end) == len(b64) {
		t.Fatal("payload length is a multiple of 3: no padding bits to set")
	}
	i := strings.IndexByte(alphabet, end[len(end)-1])
	return end[:len(end)-1] + string(alphabet[i|1]) + b64[len(end):]
}
