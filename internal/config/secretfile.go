package config

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxSecretFile bounds what a <NAME>_FILE may hold: a key or a password is
// a few hundred bytes.
const MaxSecretFile = 64 << 10

// ErrSecretFileOpen is returned for a secret file that this user owns and
// that its group or others may read: whoever can read it holds the key.
var ErrSecretFileOpen = errors.New("readable by group or others; chmod 600 it")

// ReadSecretFile reads a <NAME>_FILE. It refuses a file this user owns
// that group or others can read (as ssh refuses such a private key); a
// file another user owns is read when its mode lets this user, which is
// that owner's decision. It reads at most MaxSecretFile bytes.
func ReadSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if ownedBySelf(st) && st.Mode().Perm()&0o044 != 0 {
		return nil, fmt.Errorf("%s (mode %04o) is %w", path, st.Mode().Perm(), ErrSecretFileOpen)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSecretFile {
		return nil, fmt.Errorf("%s holds more than %d bytes: not a key or a password", path, MaxSecretFile)
	}
	return b, nil
}
