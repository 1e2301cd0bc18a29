package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/socioprophet/sourceos/internal/app"
	"github.com/socioprophet/sourceos/internal/sign"
)

// ManifestName is the netboot set's manifest; signing it signs the set.
const ManifestName = "netboot-manifest.json"

// SignCommand is `mage sign <artifact>`: it signs one artifact with the
// configuration of a (TARGET, SOURCEOS_SIGN_*, GCS_PREFIX, build fields),
// or, given a netboot-manifest.json, the manifest and every file it lists.
// It prints what it wrote.
func SignCommand(ctx context.Context, a *app.App, artifact string) error {
	kind, err := KindOf(a.Cfg.Target)
	if err != nil {
		return err
	}
	paths, err := artifactSet(kind, artifact)
	if err != nil {
		return err
	}
	arts := make([]Artifact, 0, len(paths))
	for _, p := range paths {
		arts = append(arts, Artifact{Path: p})
	}
	now := time.Now()
	res, err := Sign(ctx, SignOptions{
		Kind: kind, Artifacts: arts,
		Build:     BuildInfoFromConfig(a.Cfg, BuildInfoOptions{FinishedOn: now}),
		SecretKey: a.Cfg.SignSecretKey, Password: a.Cfg.SignPassword,
		RequireSignature: a.Cfg.RequireSignature, GCSPrefix: a.Cfg.GCSPrefix,
		Log: a.Log,
	})
	if err != nil {
		return err
	}
	if !res.Signed {
		a.Log.Warn("no signing key set: wrote unsigned provenance (the OSImage document says unsigned)")
	}
	enc := json.NewEncoder(a.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// artifactSet is the files a `mage sign` argument stands for. A manifest
// that verify would refuse (a file outside its directory, listed twice,
// without a digest) is refused here too.
func artifactSet(kind Kind, artifact string) ([]string, error) {
	if _, err := os.Stat(artifact); err != nil {
		return nil, err
	}
	if kind != Netboot || filepath.Base(artifact) != ManifestName {
		return []string{artifact}, nil
	}
	raw, err := readLimited(artifact, MaxManifestSize)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(raw)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(m.Files)+1)
	for _, f := range m.Files {
		out = append(out, filepath.Join(filepath.Dir(artifact), f.File))
	}
	return append(out, artifact), nil
}

// VerifyCommand is `mage verify <artifact>`: it prints the report (JSON
// when SOURCEOS_VERIFY_JSON=1) and returns an error whose ExitCode is the
// documented exit status.
func VerifyCommand(ctx context.Context, a *app.App, artifact string) error {
	if artifact == "" {
		return &CannotVerifyError{Err: errors.New("usage: mage verify <artifact>")}
	}
	rep, err := Verify(ctx, VerifyOptions{
		Artifact: artifact, PublicKey: a.Cfg.SignPubKey, AllowLegacy: a.Cfg.AllowLegacySig,
	})
	var werr error
	if a.Cfg.VerifyJSON {
		werr = rep.WriteJSON(a.Stdout)
	} else if len(rep.Checks) > 0 {
		werr = rep.WriteText(a.Stdout)
	}
	if err != nil {
		return err
	}
	if werr != nil {
		return &CannotVerifyError{Err: werr}
	}
	return nil
}

// KeysCommand is `mage keys:sign <secret-key-path>`: it generates a
// minisign key pair, encrypted with SOURCEOS_SIGN_PASSWORD when set. The
// secret key goes only to secretPath (created 0600, never overwritten) or
// to stdout when secretPath is "-"; the public key is written to
// <secretPath>.pub and printed (to stderr when stdout holds the secret).
func KeysCommand(a *app.App, secretPath string) error {
	if secretPath == "" {
		return errors.New("usage: mage keys:sign <secret-key-path> (or - for stdout)")
	}
	kp, err := sign.Generate(sign.GenerateOptions{Password: a.Cfg.SignPassword.Reveal()})
	if err != nil {
		return err
	}
	defer clear(kp.SecretKey)
	pubOut := a.Stdout
	if secretPath == "-" {
		pubOut = a.Stderr
		if _, err := a.Stdout.Write(kp.SecretKey); err != nil {
			return fmt.Errorf("write secret key: %w", err)
		}
	} else {
		if err := sign.WriteSecretKey(secretPath, kp.SecretKey); err != nil {
			return err
		}
		if err := writeNew(secretPath+".pub", kp.PublicKey); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(pubOut, "%s\nPublic key (SOURCEOS_SIGN_PUBKEY): %s\nKey ID: %s\nEncrypted: %t\n",
		kp.PublicKey, kp.Public.String(), kp.Public.ID, a.Cfg.SignPassword.IsSet())
	return err
}

func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write public key: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write public key: %w", err)
	}
	return nil
}
