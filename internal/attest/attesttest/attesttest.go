// Package attesttest holds what the tests of signing and verifying share:
// build facts and a Closure, generated Keys, artifacts, a signed ISO, a
// Verify call, and the real minisign CLI.
package attesttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/testrig"
	"github.com/socioprophet/sourceos/internal/verify"
)

var (
	Started  = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	Finished = Started.Add(40 * time.Minute)
)

// Clock is the time signing happens at.
func Clock() time.Time { return Finished.Add(time.Minute) }

// BuildInfo is a desktop build of target.
func BuildInfo(target string) provenance.BuildInfo {
	return provenance.BuildInfo{
		Edition: "desktop", Arch: "x86_64", Target: target, Hostname: "sourceos", Version: "1.2.3", Channel: "dev",
		FlakeRef: "path:/src", FlakeAttr: "packages.x86_64-linux.sourceos-desktop-" + target,
		SourceRepo: "https://github.com/socioprophet/sourceos", SourceRev: "0123456789abcdef0123456789abcdef01234567",
		BuildID: "build-42", BuilderID: attest.LocalBuilderID, StartedOn: Started, FinishedOn: Finished,
	}
}

// Closure is a small, well-formed runtime Closure (image -> lib).
func Closure() []provenance.StorePath {
	lib := "/nix/store/0c7dx5w5i6x2vkyr3d1yqcvr1xwq7iv6-sourceos-lib-1.0"
	img := "/nix/store/1b9jydsiygi6jhlz2dxbrxi6b4m0rn3d-sourceos-desktop-x86_64.iso"
	return []provenance.StorePath{
		{Path: lib, NarHash: "sha256:1ay6bbnbfpsvvzaxmwvxsxpbj8c2zyd2jrg8rmymmlqwzlhgmdnr", NarSize: 4096},
		{Path: img, NarHash: "sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73", NarSize: 1 << 20,
			References: []string{lib}, Deriver: "/nix/store/2c8yq0yb0x5xkq6s4w5l9y5c2vzq9l0r-sourceos-desktop-x86_64.iso.drv"},
	}
}

// Keys is a generated unencrypted key pair.
type Keys struct {
	Pair *signature.KeyPair
}

// NewKeys generates an unencrypted key pair.
func NewKeys(t *testing.T) Keys {
	t.Helper()
	kp, err := signature.Generate(signature.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return Keys{Pair: kp}
}

// Secret is the secret key file, as configuration holds it.
func (k Keys) Secret() config.Secret { return config.NewSecret(string(k.Pair.SecretKey)) }

// Pub is the public key line.
func (k Keys) Pub() string { return k.Pair.Public.String() }

// Artifact writes n random bytes to dir/name.
func Artifact(t *testing.T, dir, name string, n int) string {
	t.Helper()
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, p, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func SignISO(t *testing.T, k Keys, path string, mutate ...func(*attest.Options)) *attest.Result {
	t.Helper()
	opts := attest.Options{
		Kind: sidecar.ISO, Artifacts: []sidecar.Artifact{{Path: path}}, Build: BuildInfo("iso"),
		Closure: Closure(), SecretKey: k.Secret(), Now: Clock,
	}
	for _, m := range mutate {
		m(&opts)
	}
	res, err := attest.Write(context.Background(), opts)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return res
}

// Verify runs verify.Verify on path with the public key pub.
func Verify(t *testing.T, path, pub string, mutate ...func(*verify.VerifyOptions)) (*verify.Report, error) {
	t.Helper()
	opts := verify.VerifyOptions{Artifact: path, PublicKey: pub}
	for _, m := range mutate {
		m(&opts)
	}
	return verify.Verify(context.Background(), opts)
}

// Status is the outcome of the check called name, or "absent".
func Status(r *verify.Report, name string) string {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Status
		}
	}
	return "absent"
}

// ReportText is the report as `mage verify` prints it.
func ReportText(r *verify.Report) string {
	var b bytes.Buffer
	_ = r.WriteText(&b)
	return b.String()
}

// ReadFile reads p or fails the test.
func ReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// WriteFile writes p or fails the test.
func WriteFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ListDir lists the files under dir, relative to it.
func ListDir(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Fragments are pieces of a Secret key file that must never appear
// anywhere: chunks of its base64 line and the raw key bytes in base64 and
// hex encodings of the seed.
func Fragments(t *testing.T, secretFile []byte) []string {
	t.Helper()
	line := strings.Split(strings.TrimSpace(string(secretFile)), "\n")[1]
	raw, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		t.Fatal(err)
	}
	seed := raw[62:94]
	return []string{line[80:120], line[120:160], base64.StdEncoding.EncodeToString(seed)[:24],
		base64.RawURLEncoding.EncodeToString(seed)[:24], strings.ToLower(hexOf(seed[:16])), string(seed[:12])}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// MinisignVerify verifies path with the real minisign CLI and returns its output.
func MinisignVerify(t *testing.T, path, pub string) string {
	t.Helper()
	out, err := exec.Command(testrig.RequireTool(t, "minisign"), "-V", "-H", "-m", path, "-P", pub).CombinedOutput()
	if err != nil {
		t.Fatalf("minisign -V: %v\n%s", err, out)
	}
	return string(out)
}

const ISOName = "sourceos-desktop-x86_64.iso"

var AllSidecars = []string{".sha256", ".minisig", ".intoto.json", ".intoto.dsse.json", ".slsa.json", ".sbom.json", ".osimage.json"}

func FlipByte(t *testing.T, path string, at int) {
	t.Helper()
	b := ReadFile(t, path)
	if at < 0 {
		at += len(b)
	}
	b[at] ^= 0x01
	WriteFile(t, path, b)
}

// NetbootSet writes a kernel, an initrd, an iPXE script and the manifest
// listing them (as the build writes it) to dir; it returns their paths,
// the manifest last.
func NetbootSet(t *testing.T, dir string, b provenance.BuildInfo) []string {
	t.Helper()
	type entry struct {
		File   string `json:"file"`
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	}
	var paths []string
	var files []entry
	for _, name := range []string{"bzImage", "initrd", "netboot.ipxe"} {
		p := Artifact(t, dir, name, 2048)
		d, err := digest.Reader(bytes.NewReader(ReadFile(t, p)))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		files = append(files, entry{File: name, SHA256: d.SHA256Hex(), Size: d.Size})
	}
	m := map[string]any{"edition": b.Edition, "arch": b.Arch, "version": b.Version,
		"kernel": files[0], "initrd": files[1], "ipxe": files[2], "kernelArgs": "init=/init console=ttyS0", "files": files}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, sidecar.ManifestName)
	WriteFile(t, manifest, append(raw, '\n'))
	return append(paths, manifest)
}

func Mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}
