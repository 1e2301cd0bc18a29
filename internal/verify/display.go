package verify

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable is s as it may reach a terminal: every rune that is not
// printable (control characters, ESC and so terminal sequences, line and
// paragraph separators, bidi overrides and other format characters) and
// every invalid byte is written as a Go escape (\x1b, \u202e).
func printable(s string) string {
	if isPrintable(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func isPrintable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// maxNameLen bounds a file name taken from a URL: with the longest
// sidecar suffix and the download directory's it stays under the 255
// bytes of a file name.
const maxNameLen = 200

// checkFileName refuses a name taken from a URL that is not a plain file
// name to write into OUT: empty, ".", "..", hidden, with a path separator,
// too long, or with anything printable would escape.
func checkFileName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return errors.New("names no file")
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("file name %q has a path separator", name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("file name %q is hidden", name)
	case !isPrintable(name):
		return fmt.Errorf("file name %q has a control, format or invalid character", name)
	case len(name) > maxNameLen:
		return fmt.Errorf("file name of %d bytes, longer than %d", len(name), maxNameLen)
	}
	return nil
}
