package provider

import (
	"fmt"
	"io"
	"net/http"
)

// MaxResponseBytes bounds what a driver reads of one API answer: 16 MiB,
// far more than the largest real answer (a page of 200 droplets or 50
// servers is well under a megabyte), so that a runaway answer fails
// instead of taking unbounded memory. The SDKs read bodies whole.
const MaxResponseBytes = 16 << 20

// BodyTooLargeError is the error of reading an API answer past its limit
// (see LimitBody). Classify makes it a KindNetwork error: the answer is
// unusable, as good as lost.
type BodyTooLargeError struct {
	// Limit is the number of bytes that could be read.
	Limit int64
}

func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("API answer larger than %d bytes", e.Limit)
}

// LimitBody bounds resp's body to limit bytes (MaxResponseBytes when limit
// is 0 or less): reading past them fails with a *BodyTooLargeError. A body
// of exactly limit bytes reads whole.
func LimitBody(resp *http.Response, limit int64) {
	if resp == nil || resp.Body == nil {
		return
	}
	if limit <= 0 {
		limit = MaxResponseBytes
	}
	resp.Body = &limitedBody{rc: resp.Body, left: limit, limit: limit}
}

// LimitTransport returns a RoundTripper that bounds each answer's body
// with LimitBody. A nil base means http.DefaultTransport.
func LimitTransport(base http.RoundTripper, limit int64) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &limitTransport{base: base, limit: limit}
}

type limitTransport struct {
	base  http.RoundTripper
	limit int64
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		LimitBody(resp, t.limit)
	}
	return resp, err
}

type limitedBody struct {
	rc          io.ReadCloser
	left, limit int64
	tooLarge    error // once the limit is passed, every read fails
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.tooLarge != nil {
		return 0, b.tooLarge
	}
	if b.left <= 0 {
		// One byte more tells a body of exactly the limit from a longer
		// one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		switch {
		case n > 0:
			b.tooLarge = &BodyTooLargeError{Limit: b.limit}
			return 0, b.tooLarge
		case err == nil:
			err = io.EOF
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
