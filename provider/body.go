package provider

import (
	"io"
	"net/http"

	"github.com/spuffgo/spuff/provider/driver"
)

// maxResponseBytes bounds what is read of one API answer: 32 MiB, far more
// than the largest real answer (a page of 200 droplets, 50 servers or 1,000
// EC2 instances is a few megabytes at most), so that a runaway answer fails
// instead of taking unbounded memory. The SDKs read bodies whole.
const maxResponseBytes = 32 << 20

// limitBody bounds resp's body to limit bytes: reading past them fails with
// a *driver.BodyTooLargeError (an unusable answer, KindNetwork). A body of
// exactly limit bytes reads whole.
func limitBody(resp *http.Response, limit int64) {
	if resp == nil || resp.Body == nil {
		return
	}
	resp.Body = &limitedBody{rc: resp.Body, left: limit, limit: limit}
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
			b.tooLarge = &driver.BodyTooLargeError{Limit: b.limit}
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
