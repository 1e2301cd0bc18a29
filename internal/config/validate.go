package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// The value checks of Vars. Values that end up in object names, URLs or
// nix.conf lines are checked here, once, so that no later step can be led
// outside its bucket or prefix, or write extra configuration lines.

// checkPrintable refuses control characters (newlines included) and
// invalid UTF-8 in any plain value: none of them needs one, and a newline
// turns a value into several lines wherever it is printed.
func checkPrintable(v string) error {
	if !isPrintable(v) {
		return errors.New("contains a control character or invalid UTF-8")
	}
	return nil
}

func isPrintable(v string) bool {
	for _, r := range v {
		if r == unicode.ReplacementChar || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// bucketRe is a GCS bucket name (without dots: dotted names need domain
// verification and are not used here).
var bucketRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$`)

// runIDRe is a GitHub Actions run id.
var runIDRe = regexp.MustCompile(`^[0-9]{1,20}$`)

func checkRunID(v string) error {
	if v == "" || runIDRe.MatchString(v) {
		return nil
	}
	return fmt.Errorf("%q is not a run id (digits)", v)
}

func checkBucket(v string) error {
	if v == "" || bucketRe.MatchString(v) {
		return nil
	}
	return fmt.Errorf("%q is not a bucket name (3-63 of a-z, 0-9, '-', '_', starting and ending with a letter or digit)", v)
}

// segmentRe is one segment of an object prefix.
var segmentRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._=+@-]*$`)

// checkObjectPrefix accepts a slash-separated object prefix whose every
// segment is a plain name: no empty, "." or ".." segment, so the prefix
// cannot name anything outside itself.
func checkObjectPrefix(v string) error {
	if v == "" {
		return nil
	}
	if len(v) > 512 {
		return errors.New("longer than 512 bytes")
	}
	for _, seg := range strings.Split(v, "/") {
		if !segmentRe.MatchString(seg) || strings.Contains(seg, "..") {
			return fmt.Errorf("%q: segment %q is not a plain name (letters, digits, '.', '_', '-', '=', '+', '@'; no empty, '.' or '..' segment)", v, seg)
		}
	}
	return nil
}

// checkLocation accepts gs://bucket[/prefix] with a checked bucket and
// prefix, or a local directory (a path or file:// URL, the operator's own).
func checkLocation(v string) error {
	rest, ok := strings.CutPrefix(v, "gs://")
	if !ok {
		if strings.Contains(v, "://") && !strings.HasPrefix(v, "file://") {
			return fmt.Errorf("%q: want gs://bucket/prefix or a local directory", v)
		}
		return nil
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return fmt.Errorf("%q names no bucket", v)
	}
	if err := checkBucket(bucket); err != nil {
		return err
	}
	return checkObjectPrefix(strings.TrimSuffix(prefix, "/"))
}

// checkURL accepts an absolute http, https or file URL with nothing that
// could end a line or a nix.conf value (spaces, quotes, '#').
func checkURL(v string) error {
	if v == "" {
		return nil
	}
	if strings.ContainsAny(v, " \t\"'#\\") {
		return fmt.Errorf("%q: a URL here may not contain spaces, quotes, '#' or '\\'", v)
	}
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Errorf("%q: %w", v, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file":
		return fmt.Errorf("%q: want an http, https or file URL", v)
	case u.Scheme != "file" && u.Host == "":
		return fmt.Errorf("%q names no host", v)
	case u.User != nil:
		return fmt.Errorf("%q: credentials do not belong in a cache URL", u.Redacted())
	}
	return nil
}

func checkURLs(v string) error {
	for _, u := range strings.Fields(v) {
		if err := checkURL(u); err != nil {
			return err
		}
	}
	return nil
}

// nixKeyNameRe is the name part of a Nix signing key.
var nixKeyNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// checkNixPublicKey accepts `name:base64` of 32 bytes.
func checkNixPublicKey(v string) error {
	if v == "" {
		return nil
	}
	name, b64, ok := strings.Cut(v, ":")
	if !ok || !nixKeyNameRe.MatchString(name) {
		return fmt.Errorf("%q: want name:base64 (as made by nix-store --generate-binary-cache-key)", v)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) != 32 {
		return fmt.Errorf("%q: the key after the name is not base64 of 32 bytes", v)
	}
	return nil
}

// rootNameRe is a cache root name (as nixcache.RootNameRe): it becomes a
// segment of an object name.
var rootNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,79}$`)

func checkRootName(v string) error {
	if v == "" || rootNameRe.MatchString(v) {
		return nil
	}
	return fmt.Errorf("%q is not a root name (1-80 of a-z, 0-9, '.', '_', '-', starting with a letter or digit)", v)
}

// atMost bounds an integer variable (integer already refuses < 1).
func atMost(limit int) func(string) error {
	return func(v string) error {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > limit {
			return fmt.Errorf("%d is more than %d", n, limit)
		}
		return nil
	}
}

// keepDays refuses a retention shorter than the 30 days Nix clients
// cache narinfo look-ups: a client could still fetch a NAR GC deleted.
func keepDays(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	switch {
	case err != nil:
		return nil // integer reports it
	case n < 31:
		return fmt.Errorf("%d days: keep roots at least 31 days, longer than the 30 days Nix clients cache narinfo look-ups", n)
	case n > 36500:
		return fmt.Errorf("%d days is more than 100 years", n)
	}
	return nil
}
