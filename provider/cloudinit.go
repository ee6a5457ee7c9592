package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// The commands the cloud-init stage runs on the machine.
const (
	cloudInitStatus   = "cloud-init status --wait"
	bootFinishedCheck = "test -f /var/lib/cloud/instance/boot-finished"
	resultJSON        = "cat /var/lib/cloud/data/result.json"
)

// maxCommandOutput bounds what the stage reads of a command's output.
const maxCommandOutput = 64 << 10

// cloudInit waits for cloud-init to finish over the connection (a new one
// when it is lost: cloud-init may reboot the machine), bounded by
// CloudInit: "cloud-init status --wait", or the boot-finished marker on
// images whose cloud-init has no status command.
func (r *sshRun) cloudInit(ctx context.Context) error {
	start := time.Now()
	attempts := 0
	marker := false
	state := "not checked yet"
	var fatal, lastErr error
	w := waiter{Provider: r.name, Op: "WaitSSH", Resource: "instance", ID: r.id, Timeout: r.t.CloudInit,
		Policy: r.opts.Retry, Logger: r.log, stage: func() Stage { return StageCloudInit }}
	werr := w.Wait(ctx, func(ctx context.Context) (bool, string, error) {
		attempts++
		if r.client == nil {
			c, f := r.attempt(ctx)
			if f != nil {
				if ctx.Err() != nil {
					return false, state, ctx.Err()
				}
				lastErr = f.err
				if f.fatal {
					fatal = f.err
					return false, "reconnecting: " + f.state, errStop
				}
				state = "reconnecting: " + string(f.stage) + " " + f.state
				return false, state, nil
			}
			r.client = c
		}
		if !marker {
			state = "running" // until the command that waits for it answers
			out, code, err := r.command(ctx, cloudInitStatus)
			if err != nil {
				return r.lost(ctx, err, &state, &lastErr)
			}
			status := statusOf(out)
			switch {
			case status == "" || (code != 0 && code != 1 && code != 2):
				marker = true // no status command here (cloud-init before 18.x, or none at all)
			case status == "running" || status == "not run" || status == "not started":
				state = status
				return false, state, nil
			case code == 1 || status == "error":
				r.rep.CloudInit = &CloudInitResult{Status: status, Method: "status"}
				fatal = fmt.Errorf("%w: status %q, exit status %d (see SSHReport.CloudInit)", ErrCloudInit, status, code)
				return false, status, errStop
			default:
				r.rep.CloudInit = &CloudInitResult{Status: status, Degraded: code == 2, Method: "status"}
				return true, status, nil
			}
		}
		_, code, err := r.command(ctx, bootFinishedCheck)
		if err != nil {
			return r.lost(ctx, err, &state, &lastErr)
		}
		if code != 0 {
			state = "boot-finished not there yet"
			return false, state, nil
		}
		res := &CloudInitResult{Status: "done", Method: "boot-finished"}
		if out, code, err := r.command(ctx, resultJSON); err == nil && code == 0 {
			res.Errors = resultErrors(out)
		}
		r.rep.CloudInit = res
		if len(res.Errors) > 0 {
			res.Status = "error"
			fatal = fmt.Errorf("%w: %d error(s) in /var/lib/cloud/data/result.json (see SSHReport.CloudInit)", ErrCloudInit, len(res.Errors))
			return false, "error", errStop
		}
		return true, "done", nil
	})
	elapsed := time.Since(start)
	switch {
	case werr == nil:
		r.stageDone(StageTiming{Stage: StageCloudInit, Duration: elapsed, Attempts: attempts})
		return nil
	case errors.Is(werr, errStop) && errors.Is(fatal, ErrCloudInit):
		return r.fail(StageCloudInit, KindUnknown, elapsed, state, "", fatal, attempts)
	case errors.Is(werr, errStop):
		return r.fail(StageCloudInit, KindOf(fatal), elapsed, state, "", fatal, attempts)
	case errors.Is(werr, context.Canceled):
		return r.fail(StageCloudInit, KindUnknown, elapsed, state, "", context.Canceled, attempts)
	case KindOf(werr) == KindTimeout:
		return r.fail(StageCloudInit, KindTimeout, elapsed, state, "", lastErr, attempts)
	}
	return r.fail(StageCloudInit, KindOf(werr), elapsed, state, "", werr, attempts)
}

// lost drops a connection a command failed on, for the next poll to make
// a new one.
func (r *sshRun) lost(ctx context.Context, err error, state *string, lastErr *error) (bool, string, error) {
	r.closeClient()
	if ctx.Err() != nil {
		return false, *state, ctx.Err()
	}
	*state, *lastErr = "connection lost", err
	return false, *state, nil
}

// command runs cmd on the machine and returns its output (stdout and
// stderr, bounded) and exit status. An error means no exit status came:
// the connection failed, or ctx ended (which closes the connection).
func (r *sshRun) command(ctx context.Context, cmd string) (string, int, error) {
	c := r.client
	sess, err := c.NewSession()
	if err != nil {
		return "", 0, err
	}
	defer sess.Close()
	var out limitedBuffer
	sess.Stdout, sess.Stderr = &out, &out
	// A session cannot be cut short on its own: ctx ending closes the
	// connection, which ends the command's wait at once.
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	err = sess.Run(cmd)
	if !stop() {
		return out.String(), 0, ctx.Err()
	}
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return out.String(), 0, nil
	case errors.As(err, &exit):
		return out.String(), exit.ExitStatus(), nil
	}
	return out.String(), 0, err
}

// statusOf finds cloud-init's "status: <word>" line in the output of
// cloud-init status.
func statusOf(out string) string {
	status := ""
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(strings.TrimLeft(line, ". "))
		if s, ok := strings.CutPrefix(line, "status:"); ok {
			status = strings.TrimSpace(s)
		}
	}
	return status
}

// resultErrors returns the errors cloud-init's result.json lists.
func resultErrors(out string) []string {
	var res struct {
		V1 struct {
			Errors []json.RawMessage `json:"errors"`
		} `json:"v1"`
	}
	if json.Unmarshal([]byte(out), &res) != nil {
		return nil
	}
	errs := make([]string, 0, len(res.V1.Errors))
	for _, e := range res.V1.Errors {
		var s string
		if json.Unmarshal(e, &s) != nil {
			s = string(e)
		}
		errs = append(errs, s)
	}
	return errs
}

// limitedBuffer keeps the first maxCommandOutput bytes written to it,
// from the goroutines copying a session's stdout and stderr.
type limitedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := maxCommandOutput - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
