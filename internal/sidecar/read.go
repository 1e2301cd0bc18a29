package sidecar

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/socioprophet/sourceos/internal/signature"
)

// Size limits of what verify reads into memory, with room to spare over
// real documents: a .minisig is under 1 KiB (minisign itself allows a
// trusted comment of up to 8 KiB); a statement or predicate with a few
// hundred flake inputs is under 1 MiB; the SBOM of a 5,000-path closure is
// about 10 MiB (two KiB per path with its references).
const (
	MaxPublicKeySize = 4 << 10
	MaxSumFileSize   = 4 << 10
	MaxMinisigSize   = 16 << 10
	MaxStatementSize = 8 << 20
	MaxDSSESize      = 12 << 20 // base64 of a MaxStatementSize statement, and the envelope
	MaxSLSASize      = 8 << 20
	MaxSBOMSize      = 64 << 20
	MaxOSImageSize   = 1 << 20
	MaxManifestSize  = 1 << 20
	// MaxArtifactSize bounds an artifact downloaded to be verified (an
	// installer image is a few GiB).
	MaxArtifactSize = 64 << 30
)

// sidecarLimits maps each sidecar suffix to its limit.
var sidecarLimits = map[string]int64{
	ExtSHA256: MaxSumFileSize, ExtMinisig: MaxMinisigSize, ExtStatement: MaxStatementSize,
	ExtDSSE: MaxDSSESize, ExtSLSA: MaxSLSASize, ExtSBOM: MaxSBOMSize, ExtOSImage: MaxOSImageSize,
}

// Limit is the largest sidecar with suffix ext that verify reads.
func Limit(ext string) int64 { return sidecarLimits[ext] }

// ErrNotRegular is wrapped by the error for a path that is a device, a
// FIFO, a socket or a directory: verify reads regular files only.
var ErrNotRegular = errors.New("not a regular file")

// TooLargeError means a file is larger than verify reads for its kind.
type TooLargeError struct {
	Path        string
	Size, Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is too large: %d bytes, the limit is %s", filepath.Base(e.Path), e.Size, byteSize(e.Limit))
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// OpenRegular opens path for reading if it is a regular file (following
// symlinks). It looks before opening, so a device or a FIFO is never
// opened, and opens without blocking and looks again at what it opened, so
// a FIFO swapped in meanwhile cannot hang it.
func OpenRegular(path string) (*os.File, fs.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if err := regular(path, st); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|oNonblock, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err = f.Stat()
	if err == nil {
		err = regular(path, st)
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

func regular(path string, st fs.FileInfo) error {
	if st.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%s: %w (%s)", filepath.Base(path), ErrNotRegular, fileType(st.Mode()))
}

func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	}
	return "mode " + m.String()
}

// ReadLimited reads the regular file at path, refusing one larger than
// limit bytes (also one that grows past it while being read).
func ReadLimited(path string, limit int64) ([]byte, error) {
	f, st, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > limit {
		return nil, &TooLargeError{Path: path, Size: st.Size(), Limit: limit}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{Path: path, Size: int64(len(b)), Limit: limit}
	}
	return b, nil
}

// LoadPublicKey reads a minisign public key given as the `RW…` line, a
// .pub file's contents, or a path to a .pub file (a regular file of at most
// MaxPublicKeySize).
func LoadPublicKey(value string) (signature.PublicKey, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return signature.PublicKey{}, errors.New("no public key: set SOURCEOS_SIGN_PUBKEY to the RW… line or a .pub file")
	}
	if !strings.HasPrefix(v, "RW") && !strings.HasPrefix(v, "untrusted comment:") {
		b, err := ReadLimited(v, MaxPublicKeySize)
		if err != nil {
			return signature.PublicKey{}, fmt.Errorf("public key file: %w", err)
		}
		v = string(b)
	}
	return signature.ParsePublicKey(v)
}
