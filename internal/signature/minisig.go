package signature

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"aead.dev/minisign"
	"golang.org/x/crypto/blake2b"
)

// Signature algorithms (the first two bytes of a signature).
const (
	AlgPrehashed = minisign.HashEdDSA // "ED": ed25519 over BLAKE2b-512 of the file
	AlgLegacy    = minisign.EdDSA     // "Ed": ed25519 over the whole file
)

// Verification errors; each names one thing that did not hold.
var (
	ErrSignatureFormat = errors.New("not a minisign signature")
	ErrKeyMismatch     = errors.New("signed by a different key")
	ErrLegacy          = errors.New("legacy (non-prehashed) signature; prehashed signatures only")
	ErrBadSignature    = errors.New("signature does not match the file")
	ErrBadComment      = errors.New("trusted comment signature is invalid")
	ErrUnprintable     = errors.New("comment contains a newline or an unprintable character")
	ErrWrongFile       = errors.New("trusted comment names another file")
)

// Comment is what our trusted comments say.
type Comment struct {
	Timestamp time.Time
	File      string // base name of the signed file
	BuildID   string // empty: not stated
}

// String is the trusted comment: minisign's default fields plus the build:
// `timestamp:<unix>\tfile:<name>\tbuild:<id>\thashed`.
func (c Comment) String() string {
	fields := []string{"timestamp:" + strconv.FormatInt(c.Timestamp.Unix(), 10), "file:" + c.File}
	if c.BuildID != "" {
		fields = append(fields, "build:"+c.BuildID)
	}
	return strings.Join(append(fields, "hashed"), "\t")
}

// check rejects values that would make the comment ambiguous or unsafe.
func (c Comment) check() error {
	for _, v := range []string{c.File, c.BuildID} {
		if strings.ContainsRune(v, '\t') || !printable(v) {
			return fmt.Errorf("%q: %w", v, ErrUnprintable)
		}
	}
	if c.File == "" {
		return errors.New("trusted comment: no file name")
	}
	return nil
}

// CommentFields splits a trusted comment into its key:value fields (a field
// without a colon maps to "").
func CommentFields(comment string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Split(comment, "\t") {
		k, v, _ := strings.Cut(f, ":")
		if _, dup := out[k]; !dup {
			out[k] = v
		}
	}
	return out
}

// printable allows tabs and printable UTF-8, nothing else.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r != '\t' && !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// SignDigest makes a prehashed (`ED`) minisign signature from the file's
// BLAKE2b-512 digest, computed in the read that also gave its SHA-256, so
// the file is not read again. The library signs the digest (its
// crypto.Signer takes a BLAKE2b-512 digest) and writes the file; only the
// trusted comment is ours, so its signature is made here. The result is
// the .minisig file's contents.
func (k *SecretKey) SignDigest(blake2b512 []byte, c Comment) ([]byte, error) {
	if len(blake2b512) != blake2b.Size {
		return nil, fmt.Errorf("sign: BLAKE2b-512 digest has %d bytes, want %d", len(blake2b512), blake2b.Size)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	s, err := k.signAs(blake2b512, crypto.BLAKE2b_512)
	if err != nil {
		return nil, err
	}
	s.TrustedComment = c.String()
	s.UntrustedComment = "signature from minisign secret key " + k.ID().String()
	global, err := k.ed25519(commentMessage(s))
	if err != nil {
		return nil, err
	}
	s.CommentSignature = global
	return s.MarshalText()
}

// signAs signs message with the library's crypto.Signer (opts
// crypto.BLAKE2b_512: message is a digest; crypto.Hash(0): the message
// itself) and parses what it wrote.
func (k *SecretKey) signAs(message []byte, opts crypto.SignerOpts) (minisign.Signature, error) {
	var s minisign.Signature
	text, err := k.priv.Sign(nil, message, opts)
	if err == nil {
		err = s.UnmarshalText(text)
	}
	if err != nil {
		return s, fmt.Errorf("sign: %w", err)
	}
	return s, nil
}

// ed25519 is the plain Ed25519 signature of message: a legacy minisign
// signature's signature field (DSSE and trusted comments sign this way).
func (k *SecretKey) ed25519(message []byte) ([ed25519.SignatureSize]byte, error) {
	s, err := k.signAs(message, crypto.Hash(0))
	return s.Signature, err
}

// commentMessage is what a trusted comment's signature covers: the file
// signature, then the comment.
func commentMessage(s minisign.Signature) []byte {
	return append(append([]byte(nil), s.Signature[:]...), s.TrustedComment...)
}

// Signature is a parsed .minisig file: the library's, with the checks a
// verifier runs one by one.
type Signature struct{ minisign.Signature }

// Key is the key id the signature names.
func (s *Signature) Key() KeyID { return KeyID(s.KeyID) }

// Marshal is the .minisig file's contents.
func (s *Signature) Marshal() []byte { return []byte(s.String()) }

// ParseSignature reads a .minisig file with the library's parser, which
// takes the two comment lines by their prefixes and the two base64 fields
// by their lengths, and knows the two algorithms.
func ParseSignature(text []byte) (*Signature, error) {
	var s Signature
	if err := s.UnmarshalText(text); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignatureFormat, err)
	}
	return &s, nil
}

// Prehashed reports whether s is an `ED` signature.
func (s *Signature) Prehashed() bool { return s.Algorithm == AlgPrehashed }

// CheckKey checks s names pub's key id.
func (s *Signature) CheckKey(pub PublicKey) error {
	if s.Key() != pub.ID {
		return fmt.Errorf("%w: signature key %s, public key %s", ErrKeyMismatch, s.Key(), pub.ID)
	}
	return nil
}

// CheckAlgorithm rejects legacy signatures unless allowed.
func (s *Signature) CheckAlgorithm(allowLegacy bool) error {
	if !s.Prehashed() && !allowLegacy {
		return ErrLegacy
	}
	return nil
}

// VerifyDigest checks a prehashed signature against the file's BLAKE2b-512
// (computed in the read that gave the file's SHA-256).
func (s *Signature) VerifyDigest(pub PublicKey, blake2b512 []byte) error {
	if !s.Prehashed() {
		return ErrLegacy
	}
	return edVerify(pub, blake2b512, s.Signature.Signature[:], ErrBadSignature)
}

// VerifyMessage checks the signature against the whole file.
func (s *Signature) VerifyMessage(pub PublicKey, message []byte) error {
	if s.Prehashed() {
		h := blake2b.Sum512(message)
		return s.VerifyDigest(pub, h[:])
	}
	return edVerify(pub, message, s.Signature.Signature[:], ErrBadSignature)
}

// VerifyComment checks the trusted comment's own signature and that the
// comment holds nothing unprintable.
func (s *Signature) VerifyComment(pub PublicKey) error {
	if !printable(s.TrustedComment) {
		return ErrUnprintable
	}
	return edVerify(pub, commentMessage(s.Signature), s.CommentSignature[:], ErrBadComment)
}

func edVerify(pub PublicKey, message, sig []byte, fail error) error {
	if len(pub.Key) != ed25519.PublicKeySize || !ed25519.Verify(pub.Key, message, sig) {
		return fail
	}
	return nil
}

// CheckFile checks the trusted comment names the file base name.
func (s *Signature) CheckFile(name string) error {
	got, ok := CommentFields(s.TrustedComment)["file"]
	if !ok || got != name {
		return fmt.Errorf("%w: it names %q, the file is %q", ErrWrongFile, got, name)
	}
	return nil
}

// VerifyOptions says what a verification accepts.
type VerifyOptions struct {
	// File is the base name the trusted comment must name; empty skips
	// the check.
	File string
	// AllowLegacy accepts `Ed` signatures; Message must then hold the file.
	AllowLegacy bool
	Message     []byte
}

// Verify runs every check on a .minisig file for a file whose BLAKE2b-512
// is blake2b512, returning the first failure.
func Verify(pub PublicKey, sigFile, blake2b512 []byte, opts VerifyOptions) (*Signature, error) {
	s, err := ParseSignature(sigFile)
	if err != nil {
		return nil, err
	}
	if err := s.CheckKey(pub); err != nil {
		return s, err
	}
	if err := s.CheckAlgorithm(opts.AllowLegacy); err != nil {
		return s, err
	}
	if s.Prehashed() {
		err = s.VerifyDigest(pub, blake2b512)
	} else {
		err = s.VerifyMessage(pub, opts.Message)
	}
	if err != nil {
		return s, err
	}
	if err := s.VerifyComment(pub); err != nil {
		return s, err
	}
	if opts.File != "" {
		return s, s.CheckFile(opts.File)
	}
	return s, nil
}
