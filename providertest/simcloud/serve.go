package simcloud

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/spuffgo/spuff/provider"
)

// Dialect renders what differs between clouds: error bodies and status
// codes, and rate-limit headers.
type Dialect interface {
	// WriteError writes err as the cloud would: status code, headers and
	// body. d is the call's decision (for Retry-After and rate headers,
	// already set on w by Serve).
	WriteError(w http.ResponseWriter, r *http.Request, err *Error)
	// RateHeaders sets the cloud's rate-limit headers for the windows.
	RateHeaders(h http.Header, windows []WindowState)
}

// Serve runs one API call of op for the account holding credential:
// admission (credential, rate limit, fault choice), the fault itself, then
// fn, which writes the answer to the ResponseWriter it is given. fn's answer
// is buffered, so that a lost response can be simulated after the change is
// made, and a malformed, truncated or huge body can replace it.
func (c *Cloud) Serve(w http.ResponseWriter, r *http.Request, d Dialect, op Op, credential string, fn func(w http.ResponseWriter)) {
	c.ServeCall(w, r, d, Call{Op: op, Credential: credential}, fn)
}

// ServeCall is Serve for a call with a scope and bucket charges (EC2's
// per-action and per-region throttling).
func (c *Cloud) ServeCall(w http.ResponseWriter, r *http.Request, d Dialect, call Call, fn func(w http.ResponseWriter)) {
	dec, aerr := c.AdmitCall(call)
	if dec.Windows != nil {
		d.RateHeaders(w.Header(), dec.Windows)
	}
	if aerr != nil {
		d.WriteError(w, r, aerr)
		return
	}
	if code, msg, ok := faultError(dec.Fault); ok {
		if dec.Fault == FaultRateLimit && dec.SendRetryAfter {
			w.Header().Set("Retry-After", formatRetryAfter(c.retryAfter, dec.RetryAfter))
		}
		d.WriteError(w, r, &Error{Code: code, Message: msg})
		return
	}
	switch dec.Fault {
	case FaultDrop:
		drainAndAbort(r)
	case FaultSlow:
		t := time.NewTimer(dec.Delay)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	rec := httptest.NewRecorder()
	fn(rec)
	res := rec.Result()
	body := rec.Body.Bytes()
	switch dec.Fault {
	case FaultLoseResponse:
		drainAndAbort(r)
	case FaultMalformed:
		res.StatusCode = http.StatusOK
		body = append(body[:len(body)/2:len(body)/2], "\x00<{ not a valid body"...)
	case FaultTruncated:
		if res.StatusCode >= 300 {
			break
		}
		full := len(body)
		maps.Copy(w.Header(), res.Header)
		w.Header().Set("Content-Length", strconv.Itoa(full))
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(body[:full/2])
		return // the server closes the connection short of Content-Length
	case FaultHuge:
		maps.Copy(w.Header(), res.Header)
		w.Header().Del("Content-Length")
		w.WriteHeader(http.StatusOK)
		writeHuge(w, body)
		return
	}
	maps.Copy(w.Header(), res.Header)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(body)
}

// faultError returns the model error an answering fault shows instead of
// the operation.
func faultError(k FaultKind) (Code, string, bool) {
	switch k {
	case FaultRateLimit, FaultRateLimitBare:
		return CodeRateLimited, "API rate limit exceeded", true
	case FaultInternal:
		return CodeInternal, "internal server error", true
	case FaultBadGateway:
		return CodeBadGateway, "bad gateway", true
	case FaultUnavailable:
		return CodeUnavailable, "service unavailable", true
	case FaultCapacity:
		return CodeCapacity, "no capacity for this size in this region", true
	case FaultRegionDisabled:
		return CodeRegionDisabled, "the region takes no new machines", true
	case FaultLocked:
		return CodeLocked, "the resource is locked: an action is running", true
	case FaultConflict:
		return CodeChanged, "the resource has changed during the request, please retry", true
	}
	return "", "", false
}

// drainAndAbort reads the request body, then closes the connection without
// an answer.
func drainAndAbort(r *http.Request) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	panic(http.ErrAbortHandler)
}

// writeHuge writes 64 MiB: the start of body then filler that keeps the
// first value open, so a client that does not bound what it reads spends
// unbounded memory. A JSON body is cut inside a string (just after the
// last opening quote of its first half), where the filler's letters extend
// the string whatever the body holds; another (XML) is cut in half, inside
// a tag or text, which the letters extend too.
func writeHuge(w io.Writer, body []byte) {
	head := body[:len(body)/2]
	if t := bytes.TrimSpace(body); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		if i := lastStringStart(head); i > 0 {
			head = head[:i]
		}
	}
	if _, err := w.Write(head); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte("a"), 1<<20)
	for range 64 {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// lastStringStart returns the offset just after the last quote of b that
// opens a JSON string, or 0.
func lastStringStart(b []byte) int {
	last, in, esc := 0, false, false
	for i, c := range b {
		switch {
		case esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			if !in {
				last = i + 1
			}
			in = !in
		}
	}
	return last
}

// FormatSeconds writes a duration as Retry-After seconds: whole seconds,
// rounded up, when at least one; otherwise a decimal (simulated clouds run
// with scaled-down time, where a whole second would be far too long).
func FormatSeconds(d time.Duration) string {
	if d >= time.Second {
		return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
	}
	if d <= 0 {
		return "0"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

// Server is a simulated cloud served over HTTP on loopback.
type Server struct {
	// URL is the base URL, such as "http://127.0.0.1:41234".
	URL string
	// Cloud is the model behind the server.
	Cloud *Cloud
	srv   *httptest.Server
}

// NewServer serves h, the dialect handler of cloud, on a loopback port.
func NewServer(cloud *Cloud, h http.Handler) *Server {
	s := httptest.NewUnstartedServer(h)
	s.Start()
	return &Server{URL: s.URL, Cloud: cloud, srv: s}
}

// WaitPolicy returns a wait policy paced to the cloud's simulated boot
// time (the drivers' defaults expect real boot times of tens of seconds):
// polls from half the boot time, at gaps of a tenth of it, in wall-clock
// time (the boot delay scaled by Options.TimeScale). The dialects' Config
// functions set it.
func (s *Server) WaitPolicy() provider.WaitPolicy {
	boot := s.Cloud.Scale(s.Cloud.Options().BootDelay)
	gap := max(boot/10, time.Millisecond)
	return provider.AdaptiveWait(boot, gap, max(boot/2, gap))
}

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close shuts the server down and closes its client connections.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}
