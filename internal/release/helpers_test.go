package release_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/release"
	"github.com/socioprophet/sourceos/internal/sign"
	"github.com/socioprophet/sourceos/internal/testrig"
)

var (
	started  = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	finished = started.Add(40 * time.Minute)
)

func clock() time.Time { return finished.Add(time.Minute) }

func buildInfo(target string) provenance.BuildInfo {
	return provenance.BuildInfo{
		Edition: "desktop", Arch: "x86_64", Target: target, Hostname: "sourceos", Version: "1.2.3", Channel: "dev",
		FlakeRef: "path:/src", FlakeAttr: "packages.x86_64-linux.sourceos-desktop-" + target,
		SourceRepo: "https://github.com/socioprophet/sourceos", SourceRev: "0123456789abcdef0123456789abcdef01234567",
		BuildID: "build-42", BuilderID: release.LocalBuilderID, StartedOn: started, FinishedOn: finished,
	}
}

// closure is a small, well-formed runtime closure (image -> lib).
func closure() []provenance.StorePath {
	lib := "/nix/store/0c7dx5w5i6x2vkyr3d1yqcvr1xwq7iv6-sourceos-lib-1.0"
	img := "/nix/store/1b9jydsiygi6jhlz2dxbrxi6b4m0rn3d-sourceos-desktop-x86_64.iso"
	return []provenance.StorePath{
		{Path: lib, NarHash: "sha256:1ay6bbnbfpsvvzaxmwvxsxpbj8c2zyd2jrg8rmymmlqwzlhgmdnr", NarSize: 4096},
		{Path: img, NarHash: "sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73", NarSize: 1 << 20,
			References: []string{lib}, Deriver: "/nix/store/2c8yq0yb0x5xkq6s4w5l9y5c2vzq9l0r-sourceos-desktop-x86_64.iso.drv"},
	}
}

// keys is a generated unencrypted key pair.
type keys struct {
	pair *sign.KeyPair
}

func newKeys(t *testing.T) keys {
	t.Helper()
	kp, err := sign.Generate(sign.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return keys{pair: kp}
}

func (k keys) secret() config.Secret { return config.NewSecret(string(k.pair.SecretKey)) }
func (k keys) pub() string           { return k.pair.Public.String() }

// artifact writes n random bytes to dir/name.
func artifact(t *testing.T, dir, name string, n int) string {
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

func signISO(t *testing.T, k keys, path string, mutate ...func(*release.SignOptions)) *release.Result {
	t.Helper()
	opts := release.SignOptions{
		Kind: release.ISO, Artifacts: []release.Artifact{{Path: path}}, Build: buildInfo("iso"),
		Closure: closure(), SecretKey: k.secret(), Now: clock,
	}
	for _, m := range mutate {
		m(&opts)
	}
	res, err := release.Sign(context.Background(), opts)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return res
}

func verify(t *testing.T, path, pub string, mutate ...func(*release.VerifyOptions)) (*release.Report, error) {
	t.Helper()
	opts := release.VerifyOptions{Artifact: path, PublicKey: pub}
	for _, m := range mutate {
		m(&opts)
	}
	return release.Verify(context.Background(), opts)
}

func status(r *release.Report, name string) string {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Status
		}
	}
	return "absent"
}

func reportText(r *release.Report) string {
	var b bytes.Buffer
	_ = r.WriteText(&b)
	return b.String()
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func listDir(t *testing.T, dir string) []string {
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

// fragments are pieces of a secret key file that must never appear
// anywhere: chunks of its base64 line and the raw key bytes in base64 and
// hex encodings of the seed.
func fragments(t *testing.T, secretFile []byte) []string {
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

func minisignVerify(t *testing.T, path, pub string) string {
	t.Helper()
	out, err := exec.Command(testrig.RequireTool(t, "minisign"), "-V", "-H", "-m", path, "-P", pub).CombinedOutput()
	if err != nil {
		t.Fatalf("minisign -V: %v\n%s", err, out)
	}
	return string(out)
}
