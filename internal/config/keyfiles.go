package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFilesParent is where WriteKeyFiles puts its directories: in memory
// (tmpfs), so that no key reaches a disk.
const KeyFilesParent = "/dev/shm"

// keyDirPrefix names the directories WriteKeyFiles makes; RemoveKeyFiles
// removes files in such directories only.
const keyDirPrefix = "sourceos-keys-"

// WriteKeyFiles writes each secret c holds into a file of its own, named
// after its variable (mode 0600), in a new directory (0700) under parent,
// and returns the <NAME>_FILE=<path> assignments that hand the files to a
// later process. A lane does this in a step of its own (`mage keys:files`),
// so that the steps that build and sign, and the processes that start them,
// hold paths, never values. Nothing is written when no secret is set.
func (c *Config) WriteKeyFiles(parent string) ([]string, error) {
	var names []string
	for _, v := range Vars {
		if v.Secret && v.get(c) != "" {
			names = append(names, v.Name)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	dir, err := os.MkdirTemp(parent, keyDirPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("key files: %w", err)
	}
	var assigns []string
	for _, name := range names {
		v, _ := Lookup(name)
		p := filepath.Join(dir, name)
		if err := writeNew(p, v.get(c)); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("key files: %s: %w", name, err)
		}
		assigns = append(assigns, name+"_FILE="+p)
	}
	return assigns, nil
}

func writeNew(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	return errors.Join(err, f.Close())
}

// AppendEnvFile adds assignments to a file of NAME=value lines, such as
// GitHub Actions' $GITHUB_ENV, which sets them for the job's later steps.
func AppendEnvFile(path string, assigns []string) error {
	for _, a := range assigns {
		if strings.ContainsAny(a, "\r\n") {
			return fmt.Errorf("append to %s: a line break in an assignment", path)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	_, err = f.WriteString(strings.Join(assigns, "\n") + "\n")
	if err = errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	return nil
}

// RemoveKeyFiles removes the files that the <NAME>_FILE variables of env
// name when WriteKeyFiles made them (a file named after its variable, in a
// directory it made), then each such directory once it is empty. Any other
// file (an operator's own key file) is left alone. A file already gone is
// no error. Under GitHub Actions (GITHUB_ENV set) it also empties those
// <NAME>_FILE variables for the job's later steps, which would otherwise
// name files that are gone. It returns the paths it removed.
func RemoveKeyFiles(env Env) ([]string, error) {
	var removed, cleared []string
	var errs []error
	dirs := map[string]bool{}
	for _, v := range Vars {
		p, ok := env(v.Name + "_FILE")
		if !v.Secret || !ok || p == "" || !madeByWriteKeyFiles(p, v.Name) {
			continue
		}
		dirs[filepath.Dir(p)] = true
		switch err := os.Remove(p); {
		case err == nil:
			removed = append(removed, p)
			cleared = append(cleared, v.Name+"_FILE=")
		case errors.Is(err, fs.ErrNotExist):
			cleared = append(cleared, v.Name+"_FILE=")
		default:
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	for d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", d, err))
		}
	}
	if ghEnv, ok := env("GITHUB_ENV"); ok && ghEnv != "" && len(cleared) > 0 {
		errs = append(errs, AppendEnvFile(ghEnv, cleared))
	}
	return removed, errors.Join(errs...)
}

func madeByWriteKeyFiles(path, name string) bool {
	return filepath.IsAbs(path) && filepath.Base(path) == name &&
		strings.HasPrefix(filepath.Base(filepath.Dir(path)), keyDirPrefix)
}
