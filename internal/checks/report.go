package checks

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Failure is one thing a check found wrong, located in a file.
type Failure struct {
	Check string `json:"check"`
	File  string `json:"file"`
	// Line is 1-based; 0 when the failure concerns the whole file.
	Line int `json:"line,omitempty"`
	// Subject names what failed inside the file: a host and option path,
	// a JSON field, a shellcheck code.
	Subject  string `json:"subject,omitempty"`
	Message  string `json:"message,omitempty"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
}

// String is the failure's report line: file:line: subject: message: expected X, found Y.
func (f Failure) String() string {
	var b strings.Builder
	b.WriteString(f.File)
	if f.Line > 0 {
		fmt.Fprintf(&b, ":%d", f.Line)
	}
	parts := []string{}
	for _, p := range []string{f.Subject, f.Message} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if f.Expected != "" || f.Found != "" {
		parts = append(parts, fmt.Sprintf("expected %s, found %s", orNone(f.Expected), orNone(f.Found)))
	}
	b.WriteString(": " + strings.Join(parts, ": "))
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(nothing)"
	}
	return s
}

// Result is what one check did.
type Result struct {
	Check string `json:"check"`
	// Checked counts the items the check looked at (hosts, files, manifests).
	Checked int `json:"checked"`
	// Note says how the check ran, e.g. which host evaluation mode.
	Note     string    `json:"note,omitempty"`
	Failures []Failure `json:"failures"`
}

// Report is the outcome of every check that ran.
type Report struct {
	Results []Result `json:"results"`
	// HostMode is the host evaluation mode that ran ("nixos" or "module"),
	// empty when the hosts check did not run.
	HostMode string `json:"host_mode,omitempty"`
	Failed   int    `json:"failed"`
}

// add appends a result and counts its failures.
func (r *Report) add(res Result) {
	if res.Failures == nil {
		res.Failures = []Failure{}
	}
	r.Results = append(r.Results, res)
	r.Failed += len(res.Failures)
}

// OK reports whether every check passed.
func (r *Report) OK() bool { return r.Failed == 0 }

// WriteText writes one line per failure, grouped by check, then a summary.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, res := range r.Results {
		fmt.Fprintf(&b, "== %s: %d checked, %d failed", res.Check, res.Checked, len(res.Failures))
		if res.Note != "" {
			fmt.Fprintf(&b, " (%s)", res.Note)
		}
		b.WriteString("\n")
		for _, f := range res.Failures {
			b.WriteString(f.String() + "\n")
		}
	}
	b.WriteString(r.summary() + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) summary() string {
	if r.OK() {
		return fmt.Sprintf("contracts: all %d checks passed", len(r.Results))
	}
	failing := []string{}
	for _, res := range r.Results {
		if n := len(res.Failures); n > 0 {
			failing = append(failing, fmt.Sprintf("%s %d", res.Check, n))
		}
	}
	return fmt.Sprintf("contracts: %d failures in %d of %d checks (%s)",
		r.Failed, len(failing), len(r.Results), strings.Join(failing, ", "))
}

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// FailedError is returned by callers that turn a failing report into an error.
type FailedError struct{ Failed int }

func (e *FailedError) Error() string {
	return fmt.Sprintf("check:contracts: %d failures", e.Failed)
}
