package verify_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/verify"
)

// customBuild is what the custom lane's signer records of a custom build.
func customBuild(o *attest.Options) {
	o.Build.Custom = &provenance.Custom{UID: "user-7", BuildID: "build-42", SpecSHA256: strings.Repeat("ab", 32),
		Spec:          []byte(`{"edition":"desktop","arch":"x86_64","hostname":"box-1","packages":["htop"],"services":[],"users":[],"hasSnippet":true}`),
		ModuleSnippet: "{ ... }: { }"}
	o.Build.BuilderID, o.Build.FlakeAttr, o.Build.Channel = provenance.CustomBuilderID, "packages.x86_64-linux.custom-iso", attest.CustomChannel
}

const customName = "sourceos-custom-desktop-x86_64-user-7-build-42.iso"

func kindOf(rep *verify.Report) string {
	for _, c := range rep.Checks {
		if c.Name == verify.CheckKind {
			return c.Status + ": " + c.Detail
		}
	}
	return "absent"
}

// A custom build never passes for a release: refused by default, with the
// settings that accept it named, and accepted, labelled, when asked for.
func TestVerifyRefusesCustomBuildsUnlessAsked(t *testing.T) {
	k := attesttest.NewKeys(t)
	iso := attesttest.Artifact(t, t.TempDir(), customName, 4096)
	attesttest.SignISO(t, k, iso, customBuild)

	rep, err := attesttest.Verify(t, iso, k.Pub())
	var failed *verify.FailedError
	if !errors.As(err, &failed) || verify.ExitCode(err) != verify.ExitFailed || len(failed.Checks) != 1 ||
		!strings.Contains(kindOf(rep), "SOURCEOS_VERIFY_ALLOW_CUSTOM") || !strings.Contains(kindOf(rep), "user-7") {
		t.Fatalf("default: %v; %s", err, kindOf(rep))
	}
	for name, mutate := range map[string]func(*verify.VerifyOptions){
		"allowed":      func(o *verify.VerifyOptions) { o.AllowCustom = true },
		"its build id": func(o *verify.VerifyOptions) { o.ExpectBuildID = "build-42" },
	} {
		rep, err := attesttest.Verify(t, iso, k.Pub(), mutate)
		if err != nil || rep.Builder == nil || rep.Builder.Custom == nil || rep.Builder.Custom.SpecSHA256 != strings.Repeat("ab", 32) {
			t.Errorf("%s: %v %+v", name, err, rep.Builder)
		}
		var text strings.Builder
		_ = rep.WriteText(&text)
		if !strings.Contains(text.String(), "CUSTOM BUILD of user user-7") {
			t.Errorf("%s: the report does not say custom:\n%s", name, text.String())
		}
	}
	if _, err := attesttest.Verify(t, iso, k.Pub(), func(o *verify.VerifyOptions) { o.ExpectBuildID = "build-41" }); !errors.As(err, &failed) {
		t.Errorf("another build id: %v", err)
	}
}

// Names and kinds agree: a release claim under a custom build's name, and
// a custom build under a release's name, are refused.
func TestVerifyNameAndKindAgree(t *testing.T) {
	k := attesttest.NewKeys(t)
	release := attesttest.Artifact(t, t.TempDir(), customName, 4096)
	attesttest.SignISO(t, k, release)
	if rep, err := attesttest.Verify(t, release, k.Pub()); err == nil || !strings.Contains(kindOf(rep), "claims a release") {
		t.Errorf("release under a custom name: %v; %s", err, kindOf(rep))
	}
	custom := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
	attesttest.SignISO(t, k, custom, customBuild)
	if rep, err := attesttest.Verify(t, custom, k.Pub(), func(o *verify.VerifyOptions) { o.AllowCustom = true }); err == nil ||
		!strings.Contains(kindOf(rep), "not a custom build's") {
		t.Errorf("custom build under a release name: %v; %s", err, kindOf(rep))
	}
}

// With a separate key for custom builds, what it signs verifies only as a
// custom build: the release key never needs to reach the custom signer,
// and a stolen custom key forges no release.
func TestCustomKeyVouchesForCustomBuildsOnly(t *testing.T) {
	releaseKey, customKey := attesttest.NewKeys(t), attesttest.NewKeys(t)
	both := func(o *verify.VerifyOptions) { o.CustomPublicKey = customKey.Pub() }

	custom := attesttest.Artifact(t, t.TempDir(), customName, 4096)
	attesttest.SignISO(t, customKey, custom, customBuild)
	if rep, err := attesttest.Verify(t, custom, releaseKey.Pub(), both, func(o *verify.VerifyOptions) { o.AllowCustom = true }); err != nil {
		t.Errorf("custom build with the custom key: %v\n%s", err, attesttest.ReportText(rep))
	}
	if _, err := attesttest.Verify(t, custom, releaseKey.Pub(), func(o *verify.VerifyOptions) { o.AllowCustom = true }); err == nil {
		t.Error("the custom key's signature verified without it being configured")
	}

	forged := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
	attesttest.SignISO(t, customKey, forged) // a release claim, signed with the custom key
	if rep, err := attesttest.Verify(t, forged, releaseKey.Pub(), both); err == nil || !strings.Contains(kindOf(rep), "custom-build key") {
		t.Errorf("release claim signed with the custom key: %v; %s", err, kindOf(rep))
	}
	release := attesttest.Artifact(t, t.TempDir(), attesttest.ISOName, 4096)
	attesttest.SignISO(t, releaseKey, release)
	if rep, err := attesttest.Verify(t, release, releaseKey.Pub(), both); err != nil {
		t.Errorf("release with the release key: %v\n%s", err, attesttest.ReportText(rep))
	}
}
