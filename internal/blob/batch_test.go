package blob

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// batchResponse is a multipart batch response with one part per
// Content-ID, each answering 200 with body.
func batchResponse(ids []string, body string) *http.Response {
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "--B\r\nContent-Type: application/http\r\nContent-ID: <response-x+%s>\r\n\r\n", id)
		fmt.Fprintf(&b, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s\r\n", len(body), body)
	}
	b.WriteString("--B--\r\n")
	return &http.Response{Header: http.Header{"Content-Type": {"multipart/mixed; boundary=B"}}, Body: io.NopCloser(strings.NewReader(b.String()))}
}

// A batch response is read only when it answers each call exactly once,
// each answer of bounded size: an answer given twice in place of another
// would leave that call unanswered (code 0), which a caller could take
// for an object present.
func TestReadBatchOneBoundedAnswerPerCall(t *testing.T) {
	cases := []struct {
		name string
		resp *http.Response
		ok   bool
	}{
		{"each once", batchResponse([]string{"0", "1"}, "{}"), true},
		{"one twice, one missing", batchResponse([]string{"0", "0"}, "{}"), false},
		{"one missing", batchResponse([]string{"1"}, "{}"), false},
		{"unknown", batchResponse([]string{"0", "1", "7"}, "{}"), false},
		{"oversized", batchResponse([]string{"0", "1"}, strings.Repeat("x", maxPartBody+1)), false},
	}
	for _, c := range cases {
		answers, err := readBatch(c.resp, []int{0, 1})
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for k, a := range answers {
			if a.code != http.StatusOK {
				t.Errorf("%s: call %d answered %d", c.name, k, a.code)
			}
		}
	}
}
