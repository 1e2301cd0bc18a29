package nixcache_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/testrig"
)

const sampleNarinfo = `StorePath: /nix/store/bkid2fqll2zr8y7mawi159ngwh5q83ac-nixos-system-sourceos-desktop-25.05
URL: nar/1il52ic1dvqc9zdh5p1q6f2ksf9izk1bv3wdhy34fl07ppvy3y6c.nar.zst
Compression: zstd
FileHash: sha256:1il52ic1dvqc9zdh5p1q6f2ksf9izk1bv3wdhy34fl07ppvy3y6c
FileSize: 291
NarHash: sha256:0svp6yqk91kgf5g7xr90xy3yjsk0jp0aigndkk5nmbj62g6w347y
NarSize: 792
References: 5sw82r7pvjd2c00pfpsndcna2dvqf6g4-sourceos-desktop-etc k2wapdz0h3814pahs72p1l21xq3fwd6m-linux-6.6.1
Deriver: pq3an5h40qlgha11ybprgi5cylp1901v-nixos-system-sourceos-desktop-25.05.drv
Sig: test-1:kYfKfVC6olZTLBCWIkFziF1BrGHqCxw1FfhugB86u6Mk+LqhW0y6TFY1zRMudoEGm3B0IxRd+h7qjX1AarNPBA==
`

func TestParseNarInfoRoundTrip(t *testing.T) {
	ni, err := nixcache.ParseNarInfo([]byte(sampleNarinfo))
	if err != nil {
		t.Fatal(err)
	}
	if ni.String() != sampleNarinfo {
		t.Fatalf("round trip:\n%s", ni.String())
	}
	for _, bad := range []string{"", "Foo: bar\n", strings.Replace(sampleNarinfo, "/nix/store/bkid", "/tmp/bkid", 1),
		strings.Replace(sampleNarinfo, "NarSize: 792", "NarSize: x", 1)} {
		if _, err := nixcache.ParseNarInfo([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseNarInfo(f *testing.F) {
	f.Add([]byte(sampleNarinfo))
	f.Add([]byte("StorePath: x\nNarHash: sha256-AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ni, err := nixcache.ParseNarInfo(b)
		if err != nil {
			return
		}
		again, err := nixcache.ParseNarInfo([]byte(ni.String()))
		if err != nil {
			t.Fatalf("our own rendering does not parse: %v\n%s", err, ni.String())
		}
		if again.String() != ni.String() {
			t.Fatalf("rendering is not stable:\n%s\n%s", ni.String(), again.String())
		}
	})
}

// A key made by nix-store --generate-binary-cache-key is accepted, and ours
// has the same shape.
func TestKeysCompatibleWithNixStore(t *testing.T) {
	testrig.Nix(t)
	dir := t.TempDir()
	sk, pk := filepath.Join(dir, "sk"), filepath.Join(dir, "pk")
	if out, err := exec.Command("nix-store", "--generate-binary-cache-key", "theirs-1", sk, pk).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	skb, _ := os.ReadFile(sk)
	pkb, _ := os.ReadFile(pk)
	conf, err := nixcache.NixConf(nixcache.Options{Dir: "/srv/cache", SecretKey: config.NewSecret(string(skb))})
	if err != nil {
		t.Fatal(err)
	}
	want := "extra-substituters = file:///srv/cache\nextra-trusted-public-keys = " + string(bytes.TrimSpace(pkb)) + "\n"
	if conf != want {
		t.Fatalf("NixConf = %q, want %q", conf, want)
	}
	ours, pub, err := nixcache.GenerateKey("ours-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ours) != len(string(skb))-len("theirs-1")+len("ours-1") || len(pub) != len(string(bytes.TrimSpace(pkb)))-2 {
		t.Fatalf("key lengths differ from nix-store's: %d %d", len(ours), len(pub))
	}
	if _, _, err := nixcache.GenerateKey("bad:name"); err == nil {
		t.Fatal("accepted a name with ':'")
	}
}

func TestNixConfGCS(t *testing.T) {
	_, pk, _ := nixcache.GenerateKey("c-1")
	got, err := nixcache.NixConf(nixcache.Options{Bucket: "b", PubKey: pk})
	if err != nil || got != "extra-substituters = https://storage.googleapis.com/b/nix-cache\nextra-trusted-public-keys = "+pk+"\n" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := nixcache.NixConf(nixcache.Options{Bucket: "b"}); err == nil {
		t.Fatal("no key: no error")
	}
}

func TestReporterLines(t *testing.T) {
	now := time.Unix(0, 0)
	var buf bytes.Buffer
	r := &nixcache.Reporter{W: &buf, Interval: time.Second, Now: func() time.Time { return now }}
	r.Start(2, 2<<20)
	r.Bytes(1 << 20)
	now = now.Add(2 * time.Second)
	r.Path("/nix/store/a", nixcache.Pushed, nil)
	r.Done(nixcache.Summary{})
	want := "cache push: 2 paths to upload, 2.0 MiB of NAR\ncache push: 1/2 paths, 1.0 MiB/2.0 MiB, 0.5 MiB/s, 0 failed\n"
	if buf.String() != want {
		t.Fatalf("got %q", buf.String())
	}
}
