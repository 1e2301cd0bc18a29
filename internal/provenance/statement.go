package provenance

import (
	"errors"
	"fmt"
	"regexp"
	"sort"

	ita "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/socioprophet/sourceos/internal/strictjson"
)

// ErrBadStatement is wrapped by every error CheckStatement returns.
var ErrBadStatement = errors.New("not an in-toto Statement v1")

var (
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	sha512RE = regexp.MustCompile(`^[0-9a-f]{128}$`)
)

// Statement wraps predicate in an in-toto Statement v1 about subjects, kept
// in the order given. The predicate must pass CheckSLSAPredicate: the
// statement's predicateType is always SLSAPredicateType. Every subject needs
// a name and a lowercase hex SHA-256; SHA-512 is included when set.
func Statement(subjects []Subject, predicate []byte) ([]byte, error) {
	rds, err := subjectDescriptors(subjects)
	if err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if err := CheckSLSAPredicate(predicate); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	pred, err := predicateStruct(predicate)
	if err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	st := &ita.Statement{
		Type:          StatementType,
		Subject:       rds,
		PredicateType: SLSAPredicateType,
		Predicate:     pred,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	raw, err := protojson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("statement: marshal: %w", err)
	}
	return canonical(raw)
}

func subjectDescriptors(subjects []Subject) ([]*ita.ResourceDescriptor, error) {
	if len(subjects) == 0 {
		return nil, errors.New("no subjects")
	}
	seen := map[string]bool{}
	rds := make([]*ita.ResourceDescriptor, 0, len(subjects))
	for _, s := range subjects {
		if err := checkSubject(s); err != nil {
			return nil, err
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("subject %q listed twice", s.Name)
		}
		seen[s.Name] = true
		d := map[string]string{"sha256": s.SHA256}
		if s.SHA512 != "" {
			d["sha512"] = s.SHA512
		}
		rds = append(rds, &ita.ResourceDescriptor{Name: s.Name, Digest: d})
	}
	return rds, nil
}

func checkSubject(s Subject) error {
	switch {
	case s.Name == "":
		return errors.New("subject without a name")
	case !sha256RE.MatchString(s.SHA256):
		return fmt.Errorf("subject %q: sha256 %q is not 64 lowercase hex digits", s.Name, s.SHA256)
	case s.SHA512 != "" && !sha512RE.MatchString(s.SHA512):
		return fmt.Errorf("subject %q: sha512 %q is not 128 lowercase hex digits", s.Name, s.SHA512)
	}
	return nil
}

// CheckStatement parses statement and checks it has the Statement v1 shape:
// _type exactly Statement/v1, no unknown members, at least one subject, each
// with a name and a lowercase hex sha256 (sha512 optional), a predicateType
// and a predicate object; then the in-toto types' own Validate. It is read
// strictly (no key twice or in two cases at any depth, see strictjson) and
// must be in the form the official type writes (no proto field names such
// as "predicate_type"), so that every parser reads the same statement. The
// returned Predicate is re-encoded the way SLSAPredicate writes it, so a
// round trip through Statement gives back the same bytes.
func CheckStatement(statement []byte) (*ParsedStatement, error) {
	if err := strictjson.Check(statement); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadStatement, err)
	}
	var st ita.Statement
	if err := protojson.Unmarshal(statement, &st); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadStatement, err)
	}
	if err := officialForm(statement, &st); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadStatement, err)
	}
	if st.GetType() != StatementType {
		return nil, fmt.Errorf("%w: _type is %q, want %q", ErrBadStatement, st.GetType(), StatementType)
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadStatement, err)
	}
	subjects, err := parsedSubjects(st.GetSubject())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadStatement, err)
	}
	raw, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return nil, fmt.Errorf("%w: predicate: %w", ErrBadStatement, err)
	}
	pred, err := canonical(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: predicate: %w", ErrBadStatement, err)
	}
	return &ParsedStatement{Subjects: subjects, PredicateType: st.GetPredicateType(), Predicate: pred}, nil
}

func parsedSubjects(rds []*ita.ResourceDescriptor) ([]Subject, error) {
	out := make([]Subject, 0, len(rds))
	seen := map[string]bool{}
	for i, rd := range rds {
		s := Subject{Name: rd.GetName(), SHA256: rd.GetDigest()["sha256"], SHA512: rd.GetDigest()["sha512"]}
		if err := checkSubject(s); err != nil {
			return nil, fmt.Errorf("subject[%d]: %w", i, err)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("subject %q listed twice", s.Name)
		}
		seen[s.Name] = true
		out = append(out, s)
	}
	return out, nil
}

func sortStrings(s []string) { sort.Strings(s) }
