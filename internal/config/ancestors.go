package config

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// Exposure is a secret this process took from its environment that one of
// its ancestors (the processes that started it, up to pid 1) also holds in
// its own environment.
type Exposure struct {
	Name    string // the variable
	PID     int    // the ancestor
	Command string // its name (comm)
}

// ExposedError says which secrets of the environment sit in an ancestor's
// environment too. The kernel keeps the environment a process started with
// in /proc/PID/environ, readable by every process of the same user for as
// long as that process lives, whatever it does to its own copy: the `go`
// tool and the bootstrap of `go run magefile.go`, the mage bootstrap of a
// mage installed on PATH, a CI step's shell. Only <NAME>_FILE keeps the
// value out of them (docs/threat-model.md).
type ExposedError struct{ Exposures []Exposure }

func (e *ExposedError) Error() string {
	var names []string
	where := map[string][]string{}
	for _, x := range e.Exposures {
		if where[x.Name] == nil {
			names = append(names, x.Name)
		}
		where[x.Name] = append(where[x.Name], fmt.Sprintf("%s (pid %d)", x.Command, x.PID))
	}
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s is also in the environment of %s", n, strings.Join(where[n], ", ")))
	}
	return strings.Join(parts, "; ") + ", where every process of this user can read it (/proc/PID/environ): give it as " +
		fileForms(names) + " instead (docs/threat-model.md)"
}

func fileForms(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + "_FILE"
	}
	return strings.Join(out, ", ")
}

// maxAncestors bounds the walk up the process tree.
const maxAncestors = 64

// CheckAncestors looks for each secret this process took from its
// environment in the environment of each of its ancestors, and returns an
// *ExposedError naming those that hold it. An ancestor whose environment
// this process cannot read (another user's, or a sealed one) is passed
// over: no other process of this user can read it either. Where there is no
// /proc there is nothing to check.
func (c *Config) CheckAncestors() error {
	return c.checkAncestors(os.DirFS("/proc"), os.Getppid())
}

func (c *Config) checkAncestors(proc fs.FS, ppid int) error {
	entries := map[string][]byte{} // name -> "NAME=value"
	for _, v := range Vars {
		if val := v.get(c); v.Secret && val != "" && c.sources[v.Name] == "env" {
			entries[v.Name] = []byte(v.Name + "=" + val)
		}
	}
	if len(entries) == 0 {
		return nil
	}
	var found []Exposure
	for pid, n := ppid, 0; pid > 0 && n < maxAncestors; n++ {
		comm, parent, err := procStat(proc, pid)
		if err != nil {
			break
		}
		if env, err := fs.ReadFile(proc, strconv.Itoa(pid)+"/environ"); err == nil {
			for _, v := range Vars { // in declaration order
				if e, ok := entries[v.Name]; ok && holds(env, e) {
					found = append(found, Exposure{Name: v.Name, PID: pid, Command: comm})
				}
			}
		}
		if pid == 1 {
			break
		}
		pid = parent
	}
	if len(found) == 0 {
		return nil
	}
	return &ExposedError{Exposures: found}
}

// holds reports whether a NUL-separated environment has entry.
func holds(environ, entry []byte) bool {
	for _, e := range bytes.Split(environ, []byte{0}) {
		if bytes.Equal(e, entry) {
			return true
		}
	}
	return false
}

// procStat reads the command name and the parent of pid from
// /proc/PID/stat ("pid (comm) state ppid …"; comm may hold spaces and
// parentheses, so the last ')' ends it).
func procStat(proc fs.FS, pid int) (comm string, ppid int, err error) {
	b, err := fs.ReadFile(proc, strconv.Itoa(pid)+"/stat")
	if err != nil {
		return "", 0, err
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	rest := strings.Fields(s[end+1:])
	if len(rest) < 2 {
		return "", 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ppid, err = strconv.Atoi(rest[1])
	if err != nil {
		return "", 0, fmt.Errorf("/proc/%d/stat: parent: %w", pid, err)
	}
	return s[open+1 : end], ppid, nil
}
