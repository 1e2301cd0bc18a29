package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sign"
)

// Names of the checks Verify reports.
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
	CheckSBOM             = "sbom metadata component hash"
	CheckOSImageSchema    = "osimage schema"
	CheckOSImageRefs      = "osimage refs"
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
	Artifact string  `json:"artifact"`
	SHA256   string  `json:"sha256,omitempty"`
	KeyID    string  `json:"keyId,omitempty"`
	OK       bool    `json:"ok"`
	Checks   []Check `json:"checks"`
	// Error says why verification could not be carried out, if so.
	Error string `json:"error,omitempty"`
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

func (e *CannotVerifyError) Error() string { return "could not verify: " + e.Err.Error() }
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
	// Digests, when set, are trusted instead of hashing the artifact.
	Digests *digest.Digests
	// ReadFile reads sidecars and key files (os.ReadFile when nil).
	ReadFile func(string) ([]byte, error)
}

// Verify runs every check on an artifact and its sidecars. The error is nil
// when all pass, a *FailedError when any check failed, and a
// *CannotVerifyError when verification could not be completed.
func Verify(ctx context.Context, opts VerifyOptions) (*Report, error) {
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	rep := &Report{Artifact: opts.Artifact, Checks: []Check{}}
	cannot := func(err error) (*Report, error) {
		rep.Error = err.Error()
		return rep, &CannotVerifyError{Err: err}
	}
	pub, err := LoadPublicKey(opts.PublicKey, opts.ReadFile)
	if err != nil {
		return cannot(err)
	}
	rep.KeyID = pub.ID.String()
	d, err := artifactDigests(opts)
	if err != nil {
		return cannot(err)
	}
	rep.SHA256 = d.SHA256Hex()
	if err := ctx.Err(); err != nil {
		return cannot(err)
	}
	v := &verifier{opts: opts, pub: pub, d: d, name: filepath.Base(opts.Artifact), rep: rep}
	v.run()
	return rep, rep.result()
}

// LoadPublicKey reads a public key given as the `RW…` line, a .pub file's
// contents, or a path to a .pub file.
func LoadPublicKey(value string, readFile func(string) ([]byte, error)) (sign.PublicKey, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return sign.PublicKey{}, errors.New("no public key: set SOURCEOS_SIGN_PUBKEY to the RW… line or a .pub file")
	}
	if !strings.HasPrefix(v, "RW") && !strings.HasPrefix(v, "untrusted comment:") {
		b, err := readFile(v)
		if err != nil {
			return sign.PublicKey{}, fmt.Errorf("public key file: %w", err)
		}
		v = string(b)
	}
	return sign.ParsePublicKey(v)
}

func artifactDigests(o VerifyOptions) (digest.Digests, error) {
	if o.Digests != nil {
		return Artifact{Path: o.Artifact, Digests: o.Digests}.digests()
	}
	return digest.File(o.Artifact)
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

// WriteText prints one line per check.
func (r *Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s (sha256 %s, key %s)\n", r.Artifact, r.SHA256, r.KeyID)
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "  %-5s %s", strings.ToUpper(c.Status), c.Name)
		if c.Detail != "" {
			fmt.Fprintf(&b, ": %s", c.Detail)
		}
		b.WriteByte('\n')
	}
	verdict := "OK"
	if !r.OK {
		verdict = "NOT VERIFIED"
	}
	fmt.Fprintf(&b, "%s\n", verdict)
	_, err := w.Write(b.Bytes())
	return err
}

// WriteJSON prints the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// verifier holds the state of one verification.
type verifier struct {
	opts VerifyOptions
	pub  sign.PublicKey
	d    digest.Digests
	name string
	rep  *Report
	// statement is .intoto.json's contents once read.
	statement []byte
	parsed    *provenance.ParsedStatement
}

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

// sidecar reads a sidecar; a missing one makes each of names an error.
func (v *verifier) sidecar(ext string, names ...string) ([]byte, bool) {
	b, err := v.opts.ReadFile(v.opts.Artifact + ext)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%s is missing", v.name+ext)
		}
		for _, n := range names {
			v.errored(n, err)
		}
		return nil, false
	}
	return b, true
}

func (v *verifier) run() {
	v.minisig()
	v.sha256File()
	v.inToto()
	v.dsse()
	v.slsa()
	v.isoDocuments()
}

var minisigChecks = []string{CheckMinisigKey, CheckMinisigPrehashed, CheckMinisig, CheckTrustedComment, CheckCommentFile}

func (v *verifier) minisig() {
	raw, ok := v.sidecar(ExtMinisig, minisigChecks...)
	if !ok {
		return
	}
	s, err := sign.ParseSignature(raw)
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
func (v *verifier) signatureOverFile(s *sign.Signature) {
	switch {
	case s.Prehashed():
		v.result(CheckMinisig, s.VerifyDigest(v.pub, v.d.BLAKE2b512))
	case !v.opts.AllowLegacy:
		v.fail(CheckMinisig, sign.ErrLegacy)
	default:
		msg, err := os.ReadFile(v.opts.Artifact)
		if err != nil {
			v.errored(CheckMinisig, err)
			return
		}
		v.result(CheckMinisig, s.VerifyMessage(v.pub, msg))
	}
}

func (v *verifier) sha256File() {
	raw, ok := v.sidecar(ExtSHA256, CheckSHA256File)
	if !ok {
		return
	}
	v.result(CheckSHA256File, checkSumLine(raw, v.name, v.d.SHA256Hex()))
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

func (v *verifier) inToto() {
	raw, ok := v.sidecar(ExtStatement, CheckStatement, CheckSubjects)
	if !ok {
		return
	}
	v.statement = raw
	p, err := provenance.CheckStatement(raw)
	if err == nil && p.PredicateType != provenance.SLSAPredicateType {
		err = fmt.Errorf("predicateType %q, want %q", p.PredicateType, provenance.SLSAPredicateType)
	}
	if !v.result(CheckStatement, err) {
		v.fail(CheckSubjects, errors.New("statement unreadable"))
		return
	}
	v.parsed = p
	v.result(CheckSubjects, checkSubjects(p.Subjects, v.name, v.d))
}

// checkSubjects requires a subject naming this file and that every digest
// it gives matches.
func checkSubjects(subjects []provenance.Subject, name string, d digest.Digests) error {
	found := false
	for _, s := range subjects {
		if s.Name != name {
			continue
		}
		found = true
		if s.SHA256 != d.SHA256Hex() {
			return fmt.Errorf("subject sha256 %s, the file's is %s", s.SHA256, d.SHA256Hex())
		}
		if s.SHA512 != "" && s.SHA512 != d.SHA512Hex() {
			return fmt.Errorf("subject sha512 %s, the file's is %s", s.SHA512, d.SHA512Hex())
		}
	}
	if !found {
		return fmt.Errorf("no subject names %q", name)
	}
	return nil
}

var dsseChecks = []string{CheckDSSEType, CheckDSSESignature, CheckDSSEStatement}

func (v *verifier) dsse() {
	raw, ok := v.sidecar(ExtDSSE, dsseChecks...)
	if !ok {
		return
	}
	env, payload, err := sign.ParseEnvelope(raw)
	if err != nil {
		for _, n := range dsseChecks {
			v.fail(n, err)
		}
		return
	}
	v.result(CheckDSSEType, env.CheckPayloadType(sign.PayloadTypeInToto))
	v.result(CheckDSSESignature, env.VerifySignature(v.pub, payload))
	switch {
	case v.statement == nil:
		v.errored(CheckDSSEStatement, errors.New("no .intoto.json to compare with"))
	case !bytes.Equal(payload, v.statement):
		v.fail(CheckDSSEStatement, errors.New("the envelope's statement differs from "+v.name+ExtStatement))
	default:
		v.pass(CheckDSSEStatement)
	}
}

// slsa checks the statement's predicate is v1-shaped and that .slsa.json
// is the same predicate.
func (v *verifier) slsa() {
	raw, ok := v.sidecar(ExtSLSA, CheckSLSA)
	if !ok {
		return
	}
	if err := provenance.CheckSLSAPredicate(raw); err != nil {
		v.fail(CheckSLSA, fmt.Errorf("%s: %w", v.name+ExtSLSA, err))
		return
	}
	if v.parsed == nil {
		v.errored(CheckSLSA, errors.New("no readable statement to compare the predicate with"))
		return
	}
	if err := provenance.CheckSLSAPredicate(v.parsed.Predicate); err != nil {
		v.fail(CheckSLSA, fmt.Errorf("statement predicate: %w", err))
		return
	}
	v.result(CheckSLSA, sameJSON(raw, v.parsed.Predicate))
}

func sameJSON(a, b []byte) error {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return errors.New("not JSON")
	}
	ca, _ := json.Marshal(x)
	cb, _ := json.Marshal(y)
	if !bytes.Equal(ca, cb) {
		return errors.New("the .slsa.json predicate differs from the statement's")
	}
	return nil
}
