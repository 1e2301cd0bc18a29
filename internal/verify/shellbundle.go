package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/strictjson"
)

// A shell bundle is what the shell pipeline this code replaced
// (scripts/sign-and-provenance.sh of github.com/SourceOS-Linux/source-os)
// left beside a file it signed: a minisign signature whose trusted comment
// is "sourceos:<id>" and names no file; an in-toto statement with a
// non-standard "id" member and a predicate of the SLSA v0.2 shape; the
// predicate alone; an OSImage document and an SBOM of its own format; no
// DSSE envelope. Only the signature is signed.
//
// Verify refuses one unless AllowShellBundle (could not verify, exit 2,
// ErrShellBundle naming the setting). With it, the checks below run
// instead of the others: the signature with the release key (the old
// pipeline had no other), the trusted comment's old form, the unsigned
// statement's form and subject digest, the .sha256 when there is one. The
// report lists what such a bundle lacks, and what its statement says only
// as unverified claims. A bundle this pipeline signed is never one: its
// trusted comment (timestamp, file) is not the old form, and that comment
// is signed.
const (
	CheckShellBundle           = "shell bundle accepted"
	CheckShellMinisigKey       = "shell bundle: minisign key"
	CheckShellMinisigPrehashed = "shell bundle: minisign prehashed"
	CheckShellMinisig          = "shell bundle: minisign signature"
	CheckShellTrustedComment   = "shell bundle: minisign trusted comment"
	CheckShellCommentForm      = "shell bundle: trusted comment is the old pipeline's"
	CheckShellStatement        = "shell bundle: unsigned statement is the old pipeline's"
	CheckShellSubject          = "shell bundle: unsigned statement's subject digest"
	CheckShellSHA256File       = "shell bundle: sha256 file"
)

// ErrShellBundle is wrapped by the error of a shell bundle verified
// without AllowShellBundle.
var ErrShellBundle = errors.New("a bundle the old shell pipeline signed: no DSSE envelope, unsigned provenance, unbound OSImage document")

// shellBundleLacks are the guarantees a shell bundle does not give.
var shellBundleLacks = []string{
	"no DSSE envelope: the minisign signature covers the image's bytes and nothing else",
	"unsigned provenance: the in-toto statement and its SLSA predicate (.intoto.json, .slsa.json) are not signed; the builder, source and commit they name are unverified claims",
	"unbound OSImage document and SBOM: nothing signed lists their digests, so they are not checked",
	`file name not bound: the trusted comment "sourceos:<id>" names no file, so the signature holds for these bytes under any name`,
	`nothing signed says whether it is a release or a custom build (the old pipeline signed custom builds, channel "custom"), nor its build id, nor a rebuild`,
}

// ShellBundle is what a report says of a shell bundle.
type ShellBundle struct {
	// SignedID is the id of the trusted comment "sourceos:<id>", once its
	// signature verified with the key.
	SignedID string `json:"signedId,omitempty"`
	// Lacks are the guarantees the bundle does not give.
	Lacks []string `json:"lacks"`
	// UnverifiedClaims are what its unsigned statement says, unchecked.
	UnverifiedClaims []Claim `json:"unverifiedClaims,omitempty"`
}

// Claim is one thing an unsigned document says.
type Claim struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

const (
	shellCommentPrefix = "sourceos:"
	shellStatementURN  = "urn:srcos:attestation:"
	// maxClaimLen bounds each unverified claim the report prints.
	maxClaimLen = 200
)

// shellCommentRE is the old trusted comment: "sourceos:" and the build's
// local id, which the old script made of lower case letters, digits, '.',
// '_' and '-' (every other byte became '-').
var shellCommentRE = regexp.MustCompile(`^sourceos:([a-z0-9._-]{1,255})$`)

// isShellBundle reports whether the sidecars are a shell bundle's: no DSSE
// envelope beside the file, and a statement with the old "id" member or
// predicate, or a signature whose trusted comment has the old prefix. A
// bundle of ours whose envelope is missing has neither, and is verified
// (and refused) as ours.
func (v *verifier) isShellBundle() bool {
	if !errors.Is(v.envelope.readErr, fs.ErrNotExist) {
		return false
	}
	return v.oldStatementShape() || v.oldCommentPrefix()
}

func (v *verifier) oldStatementShape() bool {
	d := v.read(sidecar.ExtStatement)
	var top, pred map[string]json.RawMessage
	if d.err != nil || json.Unmarshal(d.data, &top) != nil {
		return false
	}
	if _, ok := top["id"]; ok {
		return true
	}
	if json.Unmarshal(top["predicate"], &pred) != nil {
		return false
	}
	_, builder := pred["builder"]
	_, invocation := pred["invocation"]
	return builder || invocation
}

func (v *verifier) oldCommentPrefix() bool {
	d := v.read(sidecar.ExtMinisig)
	if d.err != nil {
		return false
	}
	s, err := signature.ParseSignature(d.data)
	return err == nil && strings.HasPrefix(s.TrustedComment, shellCommentPrefix)
}

// verifyShellBundle is Verify for a shell bundle, with the release key.
func (v *verifier) verifyShellBundle(ctx context.Context, release signature.PublicKey) (*Report, error) {
	v.pub, v.customKey = release, false
	v.rep.KeyID = release.ID.String()
	cannot := func(err error) (*Report, error) {
		v.rep.Error = err.Error()
		return v.rep, &CannotVerifyError{Err: err}
	}
	if !v.opts.AllowShellBundle {
		err := fmt.Errorf("%w; SOURCEOS_VERIFY_ALLOW_SHELL_BUNDLE=1 checks its minisign signature and subject digest and lists what it lacks", ErrShellBundle)
		v.errored(CheckShellBundle, err)
		return cannot(err)
	}
	if !v.shellPolicy() || !v.shellFetchable() {
		return v.rep, v.rep.result()
	}
	d, err := v.hash(ctx)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return cannot(err)
	}
	v.d, v.rep.SHA256 = d, d.SHA256Hex()
	v.rep.ShellBundle = &ShellBundle{Lacks: shellBundleLacks}
	id := v.shellMinisig()
	v.shellStatement(id)
	v.shellSHA256File()
	return v.rep, v.rep.result()
}

// shellPolicy refuses what the caller asked for and a shell bundle cannot
// show; it reports the bundle accepted otherwise.
func (v *verifier) shellPolicy() bool {
	switch {
	case v.opts.ExpectBuildID != "":
		v.fail(CheckShellBundle, errors.New("SOURCEOS_VERIFY_BUILD_ID asks for the build id of signed provenance, which a shell bundle does not have"))
	case v.opts.RequireReproducible:
		v.fail(CheckShellBundle, errors.New("SOURCEOS_REQUIRE_REPRODUCIBLE asks for a reproducible rebuild on record, which a shell bundle does not have"))
	default:
		v.add(CheckShellBundle, Pass, "SOURCEOS_VERIFY_ALLOW_SHELL_BUNDLE=1: weaker guarantees, listed below")
		return true
	}
	return false
}

// shellFetchable reports whether the image may be read: a local one
// always; one at a URL (SignedOnly) only once its signature parses and
// names the key, so that nothing large is fetched on the word of a file
// anyone could have written.
func (v *verifier) shellFetchable() bool {
	if !v.opts.SignedOnly {
		return true
	}
	d := v.read(sidecar.ExtMinisig)
	status, err := Fail, d.err
	if err != nil {
		status = Error
	} else if s, perr := signature.ParseSignature(d.data); perr != nil {
		err = perr
	} else {
		err = s.CheckKey(v.pub)
	}
	if err == nil {
		return true
	}
	v.add(CheckShellMinisigKey, status, fmt.Sprintf("%v; the artifact was not fetched", err))
	return false
}

var shellMinisigChecks = []string{CheckShellMinisigKey, CheckShellMinisigPrehashed, CheckShellMinisig, CheckShellTrustedComment, CheckShellCommentForm}

// shellMinisig checks the signature and its trusted comment; it returns
// the comment's id when the key signed it in the old form, else "".
func (v *verifier) shellMinisig() string {
	raw, ok := v.sidecar(sidecar.ExtMinisig, shellMinisigChecks...)
	if !ok {
		return ""
	}
	s, err := signature.ParseSignature(raw)
	if err != nil {
		for _, n := range shellMinisigChecks {
			v.fail(n, err)
		}
		return ""
	}
	keyOK := v.result(CheckShellMinisigKey, s.CheckKey(v.pub))
	v.result(CheckShellMinisigPrehashed, withLegacyHint(s.CheckAlgorithm(v.opts.AllowLegacy)))
	v.shellSignatureOverFile(s)
	commentOK := v.result(CheckShellTrustedComment, s.VerifyComment(v.pub))
	id, err := shellCommentID(s.TrustedComment)
	if err != nil {
		v.fail(CheckShellCommentForm, err)
		return ""
	}
	v.add(CheckShellCommentForm, Pass, shellCommentPrefix+id+": it names no file, so the file name is not bound")
	if !keyOK || !commentOK {
		return ""
	}
	v.rep.ShellBundle.SignedID = id
	return id
}

// shellSignatureOverFile checks the file signature as signatureOverFile
// does, under the shell bundle's check name.
func (v *verifier) shellSignatureOverFile(s *signature.Signature) {
	switch {
	case s.Prehashed():
		v.result(CheckShellMinisig, s.VerifyDigest(v.pub, v.d.BLAKE2b512))
	case !v.opts.AllowLegacy:
		v.fail(CheckShellMinisig, withLegacyHint(signature.ErrLegacy))
	default:
		msg, err := readWhole(v.opts.Artifact)
		if err != nil {
			v.errored(CheckShellMinisig, err)
			return
		}
		v.result(CheckShellMinisig, s.VerifyMessage(v.pub, msg))
	}
}

func withLegacyHint(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w (SOURCEOS_VERIFY_ALLOW_LEGACY=1 accepts it)", err)
}

// shellCommentID is the id of an old trusted comment; the error says what
// else the comment is, naming a comment of this pipeline as such.
func shellCommentID(comment string) (string, error) {
	if m := shellCommentRE.FindStringSubmatch(comment); m != nil {
		return m[1], nil
	}
	f := signature.CommentFields(comment)
	_, ts := f["timestamp"]
	_, file := f["file"]
	if ts && file {
		return "", errors.New("the trusted comment is this pipeline's (timestamp, file): the file was signed by this pipeline, and its DSSE envelope is missing")
	}
	return "", fmt.Errorf("trusted comment %q is not %q with lower case letters, digits, '.', '_' or '-', at most 255", clip(comment), shellCommentPrefix+"<id>")
}

// shellStatement checks the unsigned statement has the old pipeline's
// form, its id the signed one (when known), and a subject naming this
// file with its SHA-256; it records what the statement claims.
func (v *verifier) shellStatement(signedID string) {
	raw, ok := v.sidecar(sidecar.ExtStatement, CheckShellStatement, CheckShellSubject)
	if !ok {
		return
	}
	st, err := parseShellStatement(raw, signedID)
	if err != nil {
		v.fail(CheckShellStatement, err)
		v.fail(CheckShellSubject, errors.New("the statement is not the old pipeline's"))
		return
	}
	v.add(CheckShellStatement, Pass, "what it says is listed below as unverified claims")
	v.result(CheckShellSubject, st.checkSubject(v.name, v.d.SHA256Hex()))
	v.rep.ShellBundle.UnverifiedClaims = st.claims()
}

// shellSHA256File checks the .sha256 the old pipeline wrote, when there
// is one.
func (v *verifier) shellSHA256File() {
	d := v.read(sidecar.ExtSHA256)
	switch {
	case d.absent():
		v.add(CheckShellSHA256File, Skip, "no .sha256 file")
	case d.err != nil:
		v.errored(CheckShellSHA256File, d.err)
	default:
		v.result(CheckShellSHA256File, checkSumLine(d.data, v.name, v.d.SHA256Hex()))
	}
}

// shellStatementDoc is the old pipeline's statement: read strictly,
// nothing more and nothing else.
type shellStatementDoc struct {
	Type          string          `json:"_type"`
	ID            string          `json:"id"`
	Subject       []shellSubject  `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     *shellPredicate `json:"predicate"`
}

type shellSubject struct {
	Name   string `json:"name"`
	Digest struct {
		SHA256 string `json:"sha256"`
	} `json:"digest"`
}

type shellSource struct {
	URI    string `json:"uri"`
	Digest struct {
		GitCommit string `json:"gitCommit"`
	} `json:"digest"`
}

// shellPredicate is the old predicate: SLSA v0.2 fields under the v1
// predicate type.
type shellPredicate struct {
	BuildType string `json:"buildType"`
	Builder   struct {
		ID string `json:"id"`
	} `json:"builder"`
	Invocation struct {
		ConfigSource shellSource `json:"configSource"`
		Parameters   struct {
			Edition  string `json:"edition"`
			Arch     string `json:"arch"`
			Target   string `json:"target"`
			Hostname string `json:"hostname"`
		} `json:"parameters"`
	} `json:"invocation"`
	Metadata struct {
		BuildStartedOn string `json:"buildStartedOn"`
		Completeness   *struct {
			Parameters  bool `json:"parameters"`
			Environment bool `json:"environment"`
			Materials   bool `json:"materials"`
		} `json:"completeness"`
		Reproducible bool `json:"reproducible"`
	} `json:"metadata"`
	Materials []shellSource `json:"materials"`
}

func parseShellStatement(raw []byte, signedID string) (*shellStatementDoc, error) {
	var st shellStatementDoc
	if err := strictjson.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("not the old pipeline's statement: %w", err)
	}
	p := st.Predicate
	switch {
	case st.Type != provenance.StatementType:
		return nil, fmt.Errorf("_type %q, want %q", clip(st.Type), provenance.StatementType)
	case st.PredicateType != provenance.SLSAPredicateType:
		return nil, fmt.Errorf("predicateType %q, want %q", clip(st.PredicateType), provenance.SLSAPredicateType)
	case p == nil || p.Builder.ID == "" || p.Metadata.Completeness == nil:
		return nil, errors.New("the predicate has not the old pipeline's shape (builder.id, metadata.completeness)")
	case !strings.HasPrefix(st.ID, shellStatementURN):
		return nil, fmt.Errorf("id %q is not %s<id>", clip(st.ID), shellStatementURN)
	case signedID != "" && st.ID != shellStatementURN+signedID:
		return nil, fmt.Errorf("id %q is not the signed id's (%s%s)", clip(st.ID), shellStatementURN, signedID)
	}
	return &st, nil
}

// checkSubject requires one subject naming the file, with its SHA-256.
func (st *shellStatementDoc) checkSubject(name, sha256 string) error {
	var found []shellSubject
	for _, s := range st.Subject {
		if s.Name == name {
			found = append(found, s)
		}
	}
	switch {
	case len(found) == 0:
		return fmt.Errorf("no subject names %q", name)
	case len(found) > 1:
		return fmt.Errorf("%d subjects name %q", len(found), name)
	case found[0].Digest.SHA256 != sha256:
		return fmt.Errorf("subject sha256 %q, the file's is %s", clip(found[0].Digest.SHA256), sha256)
	}
	return nil
}

// claims are what the statement says of the build, each bounded.
func (st *shellStatementDoc) claims() []Claim {
	p := st.Predicate
	src, par := p.Invocation.ConfigSource, p.Invocation.Parameters
	var out []Claim
	for _, c := range []Claim{{"builder", p.Builder.ID}, {"source", src.URI}, {"commit", src.Digest.GitCommit},
		{"edition", par.Edition}, {"arch", par.Arch}, {"target", par.Target}, {"hostname", par.Hostname},
		{"started", p.Metadata.BuildStartedOn}} {
		if c.Value != "" {
			out = append(out, Claim{Name: c.Name, Value: clip(c.Value)})
		}
	}
	return out
}

// clip bounds a string a document chose to maxClaimLen bytes (on a rune
// boundary).
func clip(s string) string {
	if len(s) <= maxClaimLen {
		return s
	}
	cut := maxClaimLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// writeText prints what a shell bundle lacks and what its statement
// claims; nothing when s is nil.
func (s *ShellBundle) writeText(b *bytes.Buffer) {
	if s == nil {
		return
	}
	id := s.SignedID
	if id == "" {
		id = "(none verified)"
	}
	fmt.Fprintf(b, "  shell bundle, signed id %s; it lacks:\n", id)
	for _, l := range s.Lacks {
		fmt.Fprintf(b, "    - %s\n", l)
	}
	if len(s.UnverifiedClaims) == 0 {
		return
	}
	b.WriteString("  unverified claims of its unsigned statement (not checked, anyone could have written them):\n")
	for _, c := range s.UnverifiedClaims {
		fmt.Fprintf(b, "    %s: %s\n", c.Name, c.Value)
	}
}

// printable is a copy of s with every text printable (see printable).
func (s *ShellBundle) printable() *ShellBundle {
	if s == nil {
		return nil
	}
	p := &ShellBundle{SignedID: printable(s.SignedID), Lacks: s.Lacks}
	for _, c := range s.UnverifiedClaims {
		p.UnverifiedClaims = append(p.UnverifiedClaims, Claim{Name: c.Name, Value: printable(c.Value)})
	}
	return p
}
