package provider

import (
	"errors"
	"github.com/spuffgo/spuff/provider/driver"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLimitBody(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		limit   int64
		want    string
		tooBig  bool
		readErr error
	}{
		{name: "shorter", body: "abc", limit: 4, want: "abc"},
		{name: "exactly the limit", body: "abcd", limit: 4, want: "abcd"},
		{name: "one byte more", body: "abcde", limit: 4, tooBig: true},
		{name: "far more", body: strings.Repeat("x", 1<<16), limit: 10, tooBig: true},
		{name: "empty", body: "", limit: 4, want: ""},
		{name: "error after the limit", body: "abcd", limit: 4, readErr: io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(tc.body)
			if tc.readErr != nil {
				r = io.MultiReader(r, errReader{tc.readErr})
			}
			resp := &http.Response{Body: io.NopCloser(r)}
			limitBody(resp, tc.limit)
			got, err := io.ReadAll(resp.Body)
			var tooBig *driver.BodyTooLargeError
			switch {
			case tc.tooBig:
				if !errors.As(err, &tooBig) || tooBig.Limit != tc.limit {
					t.Fatalf("read %d bytes, err %v; want a *driver.BodyTooLargeError of limit %d", len(got), err, tc.limit)
				}
				if int64(len(got)) > tc.limit {
					t.Errorf("read %d bytes past the limit %d", len(got), tc.limit)
				}
				if k := KindOf(wrapErr("x", "Op", err)); k != KindNetwork {
					t.Errorf("Classify kind %s, want network error", k)
				}
			case tc.readErr != nil:
				if !errors.Is(err, tc.readErr) {
					t.Errorf("err %v, want %v", err, tc.readErr)
				}
			case err != nil || string(got) != tc.want:
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	limitBody(nil, 1) // no panic
	limitBody(&http.Response{}, 1)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestPolicyClientBoundsAnswers: the client a driver builds its SDK on reads
// at most maxResponseBytes of an answer that never ends.
func TestPolicyClientBoundsAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("a", 1<<20))
		for range maxResponseBytes>>20 + 4 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := &http.Client{Transport: &pacedTransport{pacer: NewPacer(), base: srv.Client().Transport, limit: maxResponseBytes}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	var tooBig *driver.BodyTooLargeError
	if !errors.As(err, &tooBig) || n != maxResponseBytes {
		t.Fatalf("read %d bytes, err %v; want %d bytes then a *driver.BodyTooLargeError", n, err, maxResponseBytes)
	}
}
