// Package verify is `mage verify`: every check on an artifact and the
// sidecars internal/attest wrote beside it, with the public key alone. The
// statement, its predicate and the documents the predicate lists are taken
// from the DSSE envelope, and only once its signature verifies; everything
// else a user reads is compared with them. Each check has a name and an
// outcome in the report; the exit codes say failed (1: something does not
// match) or could not verify (2: a file missing, too large or not a regular
// file, a bad key, a bundle the old shell pipeline signed when not asked to
// accept one: see shellbundle.go).
package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/signature"
)

// Names of the checks Verify reports. Everything about the artifact's
// build is read from the statement in the DSSE envelope, and only when
// the envelope's signature verifies: the other files must agree with it.
const (
	CheckMinisigKey       = "minisign key"
	CheckMinisigPrehashed = "minisign prehashed"
	CheckMinisig          = "minisign signature"
	CheckTrustedComment   = "minisign trusted comment"
	CheckCommentFile      = "trusted comment names this file"
	CheckSHA256File       = "sha256 file"
	CheckStatement        = "in-toto statement"
	CheckSubjects         = "in-toto subject digests"
	CheckDSSEType         = "dsse payloadType"
	CheckDSSESignature    = "dsse signature"
	CheckDSSEStatement    = "dsse statement matches .intoto.json"
	CheckSLSA             = "slsa predicate v1"
	CheckByproducts       = "documents listed in the signed predicate"
	CheckSBOM             = "sbom metadata component hash"
	CheckOSImageSchema    = "osimage schema"
	CheckOSImageRefs      = "osimage refs"
	CheckOSImageClaims    = "osimage claims match the signed provenance"
	CheckNetbootSet       = "netboot manifest matches its files and the signed provenance"
	CheckRebuild          = "rebuild check"
)

// Check outcomes.
const (
	Pass  = "pass"
	Fail  = "fail"  // the evidence contradicts the artifact
	Error = "error" // the check could not run (missing file, bad key)
	Skip  = "skip"  // does not apply to this artifact
)

// Check is the outcome of one named check.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Report is the outcome of verifying one artifact.
type Report struct {
	Artifact string `json:"artifact"`
	SHA256   string `json:"sha256,omitempty"`
	KeyID    string `json:"keyId,omitempty"`
	// Builder is who built the artifact, as the signed provenance says.
	Builder *Builder `json:"builder,omitempty"`
	OK      bool     `json:"ok"`
	Checks  []Check  `json:"checks"`
	// Error says why verification could not be carried out, if so.
	Error string `json:"error,omitempty"`
	// Kept is where a downloaded artifact that verified was kept (see
	// VerifyURL); "" for a local artifact.
	Kept string `json:"kept,omitempty"`
	// ShellBundle is set for a bundle the old shell pipeline signed,
	// verified with AllowShellBundle: what it lacks, what it claims.
	ShellBundle *ShellBundle `json:"shellBundle,omitempty"`
}

// Exit codes of `mage verify`.
const (
	ExitOK           = 0
	ExitFailed       = 1 // verification failed: something does not match
	ExitCannotVerify = 2 // could not verify: missing file, bad key, usage
)

// FailedError means at least one check failed.
type FailedError struct{ Checks []string }

func (e *FailedError) Error() string {
	return "verification failed: " + strings.Join(e.Checks, ", ")
}

// CannotVerifyError means verification could not be carried out.
type CannotVerifyError struct{ Err error }

// Error says why, with anything that is not printable escaped: the reason
// may quote a URL or a file name (see printable).
func (e *CannotVerifyError) Error() string { return "could not verify: " + printable(e.Err.Error()) }
func (e *CannotVerifyError) Unwrap() error { return e.Err }

// ExitCode maps an error of Verify to the documented exit code.
func ExitCode(err error) int {
	var failed *FailedError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &failed):
		return ExitFailed
	default:
		return ExitCannotVerify
	}
}

// VerifyOptions say what to verify.
type VerifyOptions struct {
	Artifact string
	// PublicKey is the `RW…` line, a .pub file's contents, or a path to
	// a .pub file.
	PublicKey string
	// AllowLegacy accepts legacy `Ed` signatures (which need the whole
	// file in memory).
	AllowLegacy bool
	// AllowShellBundle verifies a bundle the old shell pipeline signed
	// (no DSSE envelope: see shellbundle.go) with the checks it allows;
	// such a bundle is refused otherwise.
	AllowShellBundle bool
	// Digests, when set, are trusted instead of hashing the artifact
	// (unless they lack a digest the signed statement names).
	Digests *digest.Digests
	// Hash, when set, obtains the artifact's digests of a set instead of
	// hashing the file at Artifact: it is called once, after the sidecars
	// were read and the envelope verified, and must leave the artifact at
	// Artifact (VerifyURL downloads it there while hashing). signedSHA256
	// is the SHA-256 the signed statement gives the artifact.
	Hash func(ctx context.Context, set digest.Set, signedSHA256 string) (digest.Digests, error)
	// SignedOnly stops before the artifact is hashed when no statement
	// signed by the key is beside it (VerifyURL: nothing large is fetched
	// on the word of an unsigned sidecar).
	SignedOnly bool
	// RequireReproducible fails the rebuild check unless the signed
	// provenance records a rebuild that gave the same bytes.
	RequireReproducible bool
	// AllowCustom accepts a self-serve custom build (refused by
	// default: it is not a release); ExpectBuildID requires the signed
	// build id to be this one, and accepts a custom build with it.
	AllowCustom   bool
	ExpectBuildID string
	// CustomPublicKey is the key custom builds are signed with, when it
	// is not the release key: what it signs verifies only as a custom
	// build.
	CustomPublicKey string
}

// Verify runs every check on an artifact and its sidecars. The error is nil
// when all pass, a *FailedError when any check failed, and a
// *CannotVerifyError when verification could not be completed. It reads
// regular files only (a FIFO or a device is refused without blocking) and
// no sidecar larger than its limit (see sidecar.Limit). The signed
// statement is read before the artifact is hashed: it says which digests
// to compute (SHA-512 too, for a statement that names one).
func Verify(ctx context.Context, opts VerifyOptions) (*Report, error) {
	rep := &Report{Artifact: opts.Artifact, Checks: []Check{}}
	cannot := func(err error) (*Report, error) {
		rep.Error = err.Error()
		return rep, &CannotVerifyError{Err: err}
	}
	pub, err := sidecar.LoadPublicKey(opts.PublicKey)
	if err != nil {
		return cannot(err)
	}
	var custom signature.PublicKey
	if opts.CustomPublicKey != "" {
		if custom, err = sidecar.LoadPublicKey(opts.CustomPublicKey); err != nil {
			return cannot(fmt.Errorf("custom-build key: %w", err))
		}
	}
	v := &verifier{opts: opts, name: filepath.Base(opts.Artifact), rep: rep, docs: map[string]document{}}
	v.pub = v.pickKey(pub, custom, opts.CustomPublicKey != "")
	rep.KeyID = v.pub.ID.String()
	v.loadSigned()
	if v.isShellBundle() {
		return v.verifyShellBundle(ctx, pub)
	}
	if opts.SignedOnly && v.unsigned != nil {
		var missing missingError
		if v.envelope.readErr != nil && errors.As(v.envelope.readErr, &missing) {
			return cannot(fmt.Errorf("%w: nothing signed to verify; the artifact was not fetched", v.envelope.readErr))
		}
		v.fail(CheckDSSESignature, fmt.Errorf("%w; the artifact was not fetched", v.unsigned))
		return rep, rep.result()
	}
	if v.d, err = v.hash(ctx); err != nil {
		return cannot(err)
	}
	rep.SHA256 = v.d.SHA256Hex()
	if err := ctx.Err(); err != nil {
		return cannot(err)
	}
	v.run()
	return rep, rep.result()
}

// hash obtains the artifact's digests: those the signed statement's
// subject names, besides the ones every check needs.
func (v *verifier) hash(ctx context.Context) (digest.Digests, error) {
	set := digest.Default
	if s, ok := v.signedSubject(); ok && s.SHA512 != "" {
		set |= digest.SHA512
	}
	if v.opts.Hash != nil {
		s, _ := v.signedSubject()
		return v.opts.Hash(ctx, set, s.SHA256)
	}
	return sidecar.Artifact{Path: v.opts.Artifact, Digests: v.opts.Digests}.HashSet(set)
}

// signedSubject is the signed statement's subject naming this file.
func (v *verifier) signedSubject() (provenance.Subject, bool) {
	if v.statement == nil {
		return provenance.Subject{}, false
	}
	for _, s := range v.statement.Subjects {
		if s.Name == v.name {
			return s, true
		}
	}
	return provenance.Subject{}, false
}

func (r *Report) result() error {
	var failed, errored []string
	for _, c := range r.Checks {
		switch c.Status {
		case Fail:
			failed = append(failed, c.Name)
		case Error:
			errored = append(errored, c.Name+" ("+c.Detail+")")
		}
	}
	r.OK = len(failed) == 0 && len(errored) == 0
	switch {
	case len(failed) > 0:
		return &FailedError{Checks: failed}
	case len(errored) > 0:
		err := errors.New(strings.Join(errored, "; "))
		r.Error = err.Error()
		return &CannotVerifyError{Err: err}
	}
	return nil
}

// printable is a copy of r whose every text is printable: the artifact's
// URL and what the checks say may quote names a URL or a sidecar chose.
func (r *Report) printable() *Report {
	p := *r
	p.Artifact, p.Error, p.Kept = printable(r.Artifact), printable(r.Error), printable(r.Kept)
	p.Checks = make([]Check, len(r.Checks))
	for i, c := range r.Checks {
		p.Checks[i] = Check{Name: c.Name, Status: c.Status, Detail: printable(c.Detail)}
	}
	if b := r.Builder; b != nil {
		pb := Builder{ID: printable(b.ID), BuildID: printable(b.BuildID)}
		if c := b.Custom; c != nil {
			pb.Custom = &CustomBuild{User: printable(c.User), BuildID: printable(c.BuildID), SpecSHA256: printable(c.SpecSHA256)}
		}
		p.Builder = &pb
	}
	p.ShellBundle = r.ShellBundle.printable()
	return &p
}

// WriteText prints one line per check, escaping what is not printable.
func (r *Report) WriteText(w io.Writer) error {
	r = r.printable()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s (sha256 %s, key %s)\n", r.Artifact, r.SHA256, r.KeyID)
	if r.Builder != nil {
		fmt.Fprintf(&b, "  built by %s, build %s", r.Builder.ID, r.Builder.BuildID)
		if c := r.Builder.Custom; c != nil {
			fmt.Fprintf(&b, ": CUSTOM BUILD of user %s", c.User)
		}
		b.WriteByte('\n')
	}
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "  %-5s %s", strings.ToUpper(c.Status), c.Name)
		if c.Detail != "" {
			fmt.Fprintf(&b, ": %s", c.Detail)
		}
		b.WriteByte('\n')
	}
	r.ShellBundle.writeText(&b)
	verdict := "OK"
	if !r.OK {
		verdict = "NOT VERIFIED"
	} else if r.ShellBundle != nil {
		verdict = "OK as a shell bundle: its guarantees are the weaker ones above"
	}
	fmt.Fprintf(&b, "%s\n", verdict)
	if r.Kept != "" {
		fmt.Fprintf(&b, "kept in %s (with its sidecars)\n", r.Kept)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// WriteJSON prints the report as indented JSON, escaping what is not
// printable as WriteText does.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.printable())
}

// verifier holds the state of one verification.
type verifier struct {
	opts VerifyOptions
	pub  signature.PublicKey
	// customKey is set when pub is the custom-build key.
	customKey bool
	d         digest.Digests
	name      string
	rep       *Report
	// payload is the DSSE payload, set only when the envelope's type and
	// signature verified; statement, predicate and subject are read from
	// it. unsigned says why they are not set.
	payload   []byte
	statement *provenance.ParsedStatement
	predicate *provenance.Predicate
	subject   *provenance.Subject
	unsigned  error
	// envelope and statementErr are what loadSigned found, for dsse and
	// signedStatement to report.
	envelope     envelopeOutcome
	statementErr error
	// osImage is the OSImage document once it validated.
	osImage *provenance.OSImageDocument
	// docs caches the documents read beside the artifact, by suffix.
	docs map[string]document
}

// document is a sidecar as read: its bytes, or why it could not be read
// (wrapping fs.ErrNotExist when it is absent).
type document struct {
	data []byte
	err  error
}

func (d document) absent() bool { return errors.Is(d.err, fs.ErrNotExist) }

// missingError names a sidecar that is not there.
type missingError string

func (e missingError) Error() string { return string(e) + " is missing" }
func (e missingError) Unwrap() error { return fs.ErrNotExist }

func (v *verifier) add(name, status, detail string) {
	v.rep.Checks = append(v.rep.Checks, Check{Name: name, Status: status, Detail: detail})
}

func (v *verifier) pass(name string)               { v.add(name, Pass, "") }
func (v *verifier) fail(name string, err error)    { v.add(name, Fail, err.Error()) }
func (v *verifier) errored(name string, err error) { v.add(name, Error, err.Error()) }

// result records err as a failure of name, or a pass when nil.
func (v *verifier) result(name string, err error) bool {
	if err != nil {
		v.fail(name, err)
		return false
	}
	v.pass(name)
	return true
}

// read reads the sidecar with suffix ext once, within its size limit.
func (v *verifier) read(ext string) document {
	if d, ok := v.docs[ext]; ok {
		return d
	}
	b, err := sidecar.ReadLimited(v.opts.Artifact+ext, sidecar.Limit(ext))
	if errors.Is(err, fs.ErrNotExist) {
		err = missingError(v.name + ext)
	}
	d := document{data: b, err: err}
	v.docs[ext] = d
	return d
}

// sidecar reads a sidecar; one that is missing or unreadable makes each of
// names an error.
func (v *verifier) sidecar(ext string, names ...string) ([]byte, bool) {
	d := v.read(ext)
	if d.err != nil {
		for _, n := range names {
			v.errored(n, d.err)
		}
		return nil, false
	}
	return d.data, true
}

// signed reports whether the signed statement was read; if not, each of
// names is an error saying why.
func (v *verifier) signed(names ...string) bool {
	if v.statement != nil {
		return true
	}
	for _, n := range names {
		v.errored(n, fmt.Errorf("no statement signed by this key: %w", v.unsigned))
	}
	return false
}

func (v *verifier) run() {
	v.minisig()
	v.dsse()
	v.signedStatement()
	v.kind()
	v.statementFile()
	v.slsa()
	v.sha256File()
	v.byproducts()
	v.osImageDocument()
	v.sbom()
	v.netboot()
	v.rebuild()
}

var minisigChecks = []string{CheckMinisigKey, CheckMinisigPrehashed, CheckMinisig, CheckTrustedComment, CheckCommentFile}

func (v *verifier) minisig() {
	raw, ok := v.sidecar(sidecar.ExtMinisig, minisigChecks...)
	if !ok {
		return
	}
	s, err := signature.ParseSignature(raw)
	if err != nil {
		for _, n := range minisigChecks {
			v.fail(n, err)
		}
		return
	}
	v.result(CheckMinisigKey, s.CheckKey(v.pub))
	v.result(CheckMinisigPrehashed, s.CheckAlgorithm(v.opts.AllowLegacy))
	v.signatureOverFile(s)
	v.result(CheckTrustedComment, s.VerifyComment(v.pub))
	v.result(CheckCommentFile, s.CheckFile(v.name))
}

// signatureOverFile checks the file signature: against the digest for a
// prehashed signature; a legacy one (when allowed) needs the whole file.
func (v *verifier) signatureOverFile(s *signature.Signature) {
	switch {
	case s.Prehashed():
		v.result(CheckMinisig, s.VerifyDigest(v.pub, v.d.BLAKE2b512))
	case !v.opts.AllowLegacy:
		v.fail(CheckMinisig, signature.ErrLegacy)
	default:
		msg, err := readWhole(v.opts.Artifact)
		if err != nil {
			v.errored(CheckMinisig, err)
			return
		}
		v.result(CheckMinisig, s.VerifyMessage(v.pub, msg))
	}
}

// readWhole reads the (regular) artifact into memory for a legacy signature.
func readWhole(path string) ([]byte, error) {
	f, _, err := sidecar.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

var dsseChecks = []string{CheckDSSEType, CheckDSSESignature}

// envelopeOutcome is what reading the DSSE envelope found: why it could
// not be read or parsed, or the outcome of its two checks.
type envelopeOutcome struct {
	readErr, parseErr error
	typeErr, sigErr   error
}

// loadSigned reads the envelope and, when its type and signature verify,
// the statement and predicate it signs; nothing is reported yet (dsse and
// signedStatement do), so that the artifact can be hashed in between.
func (v *verifier) loadSigned() {
	d := v.read(sidecar.ExtDSSE)
	if d.err != nil {
		v.envelope.readErr, v.unsigned = d.err, d.err
		return
	}
	env, payload, err := signature.ParseEnvelope(d.data)
	if err != nil {
		v.envelope.parseErr, v.unsigned = err, err
		return
	}
	v.envelope.typeErr = env.CheckPayloadType(signature.PayloadTypeInToto)
	v.envelope.sigErr = env.VerifySignature(v.pub, payload)
	if v.envelope.typeErr != nil || v.envelope.sigErr != nil {
		v.unsigned = errors.New("the DSSE envelope does not verify")
		return
	}
	v.payload = payload
	p, err := provenance.CheckStatement(payload)
	var pred *provenance.Predicate
	if err == nil {
		pred, err = provenance.ParsePredicate(p.Predicate)
	}
	if err != nil {
		v.statementErr = err
		v.unsigned = fmt.Errorf("the signed statement is unreadable: %w", err)
		return
	}
	v.statement, v.predicate = p, pred
}

// dsse reports the envelope's checks; its payload is trusted only when
// both pass.
func (v *verifier) dsse() {
	e := v.envelope
	switch {
	case e.readErr != nil:
		for _, n := range dsseChecks {
			v.errored(n, e.readErr)
		}
	case e.parseErr != nil:
		for _, n := range dsseChecks {
			v.fail(n, e.parseErr)
		}
	default:
		v.result(CheckDSSEType, e.typeErr)
		v.result(CheckDSSESignature, e.sigErr)
	}
}

// signedStatement reports whether the signed statement and its predicate
// were read and checks its subject is this file.
func (v *verifier) signedStatement() {
	switch {
	case v.payload == nil:
		v.signed(CheckStatement, CheckSubjects)
		return
	case v.statementErr != nil:
		v.fail(CheckStatement, v.statementErr)
		v.fail(CheckSubjects, v.unsigned)
		return
	}
	v.pass(CheckStatement)
	s, err := checkSubjects(v.statement.Subjects, v.name, v.d)
	if v.result(CheckSubjects, err) {
		v.subject = &s
	}
}

// checkSubjects requires a subject naming this file and that every digest
// it gives matches (SHA-512 too: statements written before it was dropped
// name it, and d then holds it, see hash); it returns that subject.
func checkSubjects(subjects []provenance.Subject, name string, d digest.Digests) (provenance.Subject, error) {
	for _, s := range subjects {
		if s.Name != name {
			continue
		}
		if s.SHA256 != d.SHA256Hex() {
			return s, fmt.Errorf("subject sha256 %s, the file's is %s", s.SHA256, d.SHA256Hex())
		}
		if s.SHA512 != "" && s.SHA512 != d.SHA512Hex() {
			return s, fmt.Errorf("subject sha512 %s, the file's is %s", s.SHA512, d.SHA512Hex())
		}
		return s, nil
	}
	return provenance.Subject{}, fmt.Errorf("no subject names %q", name)
}

// statementFile checks .intoto.json is byte for byte the signed statement.
func (v *verifier) statementFile() {
	raw, ok := v.sidecar(sidecar.ExtStatement, CheckDSSEStatement)
	switch {
	case !ok:
	case v.payload == nil:
		v.signed(CheckDSSEStatement)
	case !bytes.Equal(raw, v.payload):
		v.fail(CheckDSSEStatement, errors.New(v.name+sidecar.ExtStatement+" differs from the statement in the DSSE envelope"))
	default:
		v.pass(CheckDSSEStatement)
	}
}

// slsa checks .slsa.json is byte for byte the predicate the signed
// statement carries (which the statement check found to be SLSA v1).
func (v *verifier) slsa() {
	raw, ok := v.sidecar(sidecar.ExtSLSA, CheckSLSA)
	if !ok || !v.signed(CheckSLSA) {
		return
	}
	if bytes.Equal(raw, v.statement.Predicate) {
		v.pass(CheckSLSA)
		return
	}
	err := errors.New(v.name + sidecar.ExtSLSA + " differs from the predicate of the signed statement")
	if perr := provenance.CheckSLSAPredicate(raw); perr != nil {
		err = fmt.Errorf("%w; it is not a valid predicate either: %w", err, perr)
	}
	v.fail(CheckSLSA, err)
}

// sha256File checks the checksum file names this file with its SHA-256,
// which is also the signed subject's when there is a signed statement.
func (v *verifier) sha256File() {
	raw, ok := v.sidecar(sidecar.ExtSHA256, CheckSHA256File)
	if !ok {
		return
	}
	err := checkSumLine(raw, v.name, v.d.SHA256Hex())
	if err == nil && v.subject != nil && v.subject.SHA256 != v.d.SHA256Hex() {
		err = fmt.Errorf("the signed subject's sha256 is %s", v.subject.SHA256)
	}
	v.result(CheckSHA256File, err)
}

// checkSumLine checks a sha256sum-format line: "<hex>  <name>" (or " *name").
func checkSumLine(raw []byte, name, want string) error {
	line := strings.TrimSuffix(string(raw), "\n")
	sum, file, ok := strings.Cut(line, " ")
	file = strings.TrimPrefix(strings.TrimPrefix(file, " "), "*")
	switch {
	case !ok || strings.Contains(line, "\n"):
		return errors.New("not one sha256sum line")
	case sum != want:
		return fmt.Errorf("sha256 %s, the file's is %s", sum, want)
	case file != name:
		return fmt.Errorf("names %q, the file is %q", file, name)
	}
	return nil
}

// RunOptions are what `mage verify <artifact>` works from.
type RunOptions struct {
	VerifyOptions
	// JSON prints the report as JSON instead of text.
	JSON bool
	Out  io.Writer
	// KeepDir, Progress, GCS and Limits are for an artifact given as a
	// URL: see URLOptions.
	KeepDir  string
	Progress io.Writer
	GCS      ObjectReader
	Limits   Limits
}

// FromConfig is what `mage verify <artifact>` checks with:
// SOURCEOS_SIGN_PUBKEY, SOURCEOS_VERIFY_ALLOW_LEGACY,
// SOURCEOS_VERIFY_ALLOW_SHELL_BUNDLE, SOURCEOS_REQUIRE_REPRODUCIBLE,
// SOURCEOS_VERIFY_JSON, OUT (where a downloaded artifact that verifies is
// kept) and the limits of a download (SOURCEOS_VERIFY_TIMEOUT,
// _HEADER_TIMEOUT, _IDLE_TIMEOUT, _MIN_RATE).
func FromConfig(cfg *config.Config, artifact string, out io.Writer) RunOptions {
	return RunOptions{VerifyOptions: VerifyOptions{Artifact: artifact, PublicKey: cfg.SignPubKey, AllowLegacy: cfg.AllowLegacySig,
		AllowShellBundle:    cfg.AllowShellBundle,
		RequireReproducible: cfg.RequireReproducible, AllowCustom: cfg.VerifyAllowCustom, ExpectBuildID: cfg.VerifyBuildID,
		CustomPublicKey: cfg.CustomSignPubKey},
		JSON: cfg.VerifyJSON, Out: out, KeepDir: cfg.Out, Limits: limitsFromConfig(cfg)}
}

// Run is `mage verify <artifact>`: it prints the report and returns an
// error whose ExitCode is the documented exit status.
func Run(ctx context.Context, o RunOptions) error {
	if o.Artifact == "" {
		return &CannotVerifyError{Err: errors.New("usage: mage verify <artifact or https:// or gs:// URL>")}
	}
	var (
		rep *Report
		err error
	)
	if IsURL(o.Artifact) {
		rep, err = VerifyURL(ctx, o.VerifyOptions, URLOptions{KeepDir: o.KeepDir, Progress: o.Progress, GCS: o.GCS, Limits: o.Limits})
	} else {
		rep, err = Verify(ctx, o.VerifyOptions)
	}
	var werr error
	if o.JSON {
		werr = rep.WriteJSON(o.Out)
	} else if len(rep.Checks) > 0 {
		werr = rep.WriteText(o.Out)
	}
	if err != nil {
		return err
	}
	if werr != nil {
		return &CannotVerifyError{Err: werr}
	}
	return nil
}
