package sign

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
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
// BLAKE2b-512 digest, so the file is not read again. The result is the
// .minisig file's contents.
func (k *SecretKey) SignDigest(blake2b512 []byte, c Comment) ([]byte, error) {
	if len(blake2b512) != blake2b.Size {
		return nil, fmt.Errorf("sign: BLAKE2b-512 digest has %d bytes, want %d", len(blake2b512), blake2b.Size)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	s := &Signature{Algorithm: AlgPrehashed, KeyID: k.id, TrustedComment: c.String(),
		UntrustedComment: "signature from minisign secret key " + k.id.String()}
	copy(s.Sig[:], k.sign(blake2b512))
	copy(s.CommentSig[:], k.sign(s.globalMessage()))
	return s.Marshal(), nil
}

// Signature is a parsed .minisig file.
type Signature struct {
	Algorithm        uint16
	KeyID            KeyID
	Sig              [ed25519.SignatureSize]byte
	UntrustedComment string
	TrustedComment   string
	CommentSig       [ed25519.SignatureSize]byte
}

func (s *Signature) globalMessage() []byte {
	return append(append([]byte(nil), s.Sig[:]...), s.TrustedComment...)
}

// Marshal is the .minisig file's contents.
func (s *Signature) Marshal() []byte {
	raw := binary.LittleEndian.AppendUint16(nil, s.Algorithm)
	raw = binary.LittleEndian.AppendUint64(raw, uint64(s.KeyID))
	raw = append(raw, s.Sig[:]...)
	return []byte("untrusted comment: " + s.UntrustedComment + "\n" +
		base64.StdEncoding.EncodeToString(raw) + "\n" +
		"trusted comment: " + s.TrustedComment + "\n" +
		base64.StdEncoding.EncodeToString(s.CommentSig[:]) + "\n")
}

// ParseSignature reads a .minisig file strictly: four lines, the comments'
// prefixes, and base64 fields of the right lengths.
func ParseSignature(text []byte) (*Signature, error) {
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	if len(lines) != 4 {
		return nil, fmt.Errorf("%w: %d lines, want 4", ErrSignatureFormat, len(lines))
	}
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	uc, ok1 := strings.CutPrefix(lines[0], "untrusted comment: ")
	tc, ok2 := strings.CutPrefix(lines[2], "trusted comment: ")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: comment lines", ErrSignatureFormat)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(lines[1])
	if err != nil || len(raw) != 2+8+ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature line", ErrSignatureFormat)
	}
	global, err := base64.StdEncoding.Strict().DecodeString(lines[3])
	if err != nil || len(global) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: trusted comment signature line", ErrSignatureFormat)
	}
	s := &Signature{Algorithm: binary.LittleEndian.Uint16(raw), KeyID: KeyID(binary.LittleEndian.Uint64(raw[2:])),
		UntrustedComment: uc, TrustedComment: tc}
	if s.Algorithm != AlgPrehashed && s.Algorithm != AlgLegacy {
		return nil, fmt.Errorf("%w: unknown algorithm %#04x", ErrSignatureFormat, s.Algorithm)
	}
	copy(s.Sig[:], raw[10:])
	copy(s.CommentSig[:], global)
	return s, nil
}

// Prehashed reports whether s is an `ED` signature.
func (s *Signature) Prehashed() bool { return s.Algorithm == AlgPrehashed }

// CheckKey checks s names pub's key id.
func (s *Signature) CheckKey(pub PublicKey) error {
	if s.KeyID != pub.ID {
		return fmt.Errorf("%w: signature key %s, public key %s", ErrKeyMismatch, s.KeyID, pub.ID)
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

// VerifyDigest checks a prehashed signature against the file's BLAKE2b-512.
func (s *Signature) VerifyDigest(pub PublicKey, blake2b512 []byte) error {
	if !s.Prehashed() {
		return ErrLegacy
	}
	if len(pub.Key) != ed25519.PublicKeySize || !ed25519.Verify(pub.Key, blake2b512, s.Sig[:]) {
		return ErrBadSignature
	}
	return nil
}

// VerifyMessage checks a legacy signature against the whole file.
func (s *Signature) VerifyMessage(pub PublicKey, message []byte) error {
	if s.Prehashed() {
		h := blake2b.Sum512(message)
		return s.VerifyDigest(pub, h[:])
	}
	if len(pub.Key) != ed25519.PublicKeySize || !ed25519.Verify(pub.Key, message, s.Sig[:]) {
		return ErrBadSignature
	}
	return nil
}

// VerifyComment checks the trusted comment's own signature and that the
// comment holds nothing unprintable.
func (s *Signature) VerifyComment(pub PublicKey) error {
	if !printable(s.TrustedComment) {
		return ErrUnprintable
	}
	if len(pub.Key) != ed25519.PublicKeySize || !ed25519.Verify(pub.Key, s.globalMessage(), s.CommentSig[:]) {
		return ErrBadComment
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
