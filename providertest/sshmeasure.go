package providertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/providertest/simcloud"
	"github.com/spuffgo/spuff/providertest/simssh"
)

// SSHTimings are the stage timings of machines awaited with
// provider.WaitSSH on a simulated cloud, for benchmarks and reports.
type SSHTimings struct {
	// Stages are each stage's durations, one per machine, by stage.
	// StageHandshake's is the time from the port's first accepted
	// connection to the first handshake that got to an accepted host key.
	Stages map[provider.Stage][]time.Duration
	// PortLag are the times from each machine's sshd listening to
	// WaitSSH's first connection to it: how soon the connection attempts
	// notice an open port.
	PortLag []time.Duration
	// APICalls is the number of API calls the waits made after their
	// machines ran (zero: the SSH stages cost the API nothing).
	APICalls int
}

// Median returns the median duration of stage s, 0 with no samples.
func (t *SSHTimings) Median(s provider.Stage) time.Duration { return Percentile(t.Stages[s], 50) }

// P95 returns the 95th percentile duration of stage s, 0 with no samples.
func (t *SSHTimings) P95(s provider.Stage) time.Duration { return Percentile(t.Stages[s], 95) }

// Percentile returns the p-th percentile (0 to 100, nearest rank) of d,
// 0 when d is empty.
func Percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

// MeasureSSH creates n machines one after the other on p, a provider of
// sshd's simulated cloud, waits for each with provider.WaitSSH (through
// sshd's DialContext, cloud-init included) and destroys it, and returns
// the stage timings. req(i) is the i-th request; MeasureSSH registers a
// key of its own on the account and installs it. The host key is pinned
// to the machine's own (sshd knows it). examples/benchreport calls it for
// its table of stage timings (median and p95).
func MeasureSSH(ctx context.Context, p provider.Provider, sshd *simssh.Server, n int, req func(i int) provider.InstanceRequest) (*SSHTimings, error) {
	cloud := sshd.Cloud()
	const keyName = "spuff-measure"
	signer := simssh.UserKey(cloud.Options().Seed, 1)
	key, ok := cloud.FindSSHKey(keyName)
	if !ok {
		signer, key = simssh.AddUserKey(cloud, keyName, 1)
	}
	keys, err := p.ListSSHKeys(ctx)
	if err != nil {
		return nil, err
	}
	ref := ""
	for _, k := range keys {
		if k.Name == key.Name {
			ref = k.ID
		}
	}
	if ref == "" {
		return nil, fmt.Errorf("providertest: ListSSHKeys does not list the key %q", key.Name)
	}
	pinned := provider.HostKeyFunc(func(ctx context.Context, t *provider.HostKeyTarget, k ssh.PublicKey) (string, error) {
		want, ok := sshd.HostKeyFor(t.Addr)
		if !ok {
			return "", &provider.HostKeyError{Addr: t.Addr, Err: provider.ErrHostKeyUnknown}
		}
		return provider.HostKeys(want).VerifyHostKey(ctx, t, k)
	})
	out := &SSHTimings{Stages: map[provider.Stage][]time.Duration{}}
	for i := range n {
		r := req(i)
		r.SSHKeys = append(slices.Clone(r.SSHKeys), ref)
		inst, err := p.CreateInstance(ctx, r)
		if err != nil {
			return out, err
		}
		var calls int
		var portAt time.Time
		trace := &provider.WaitTrace{StageDone: func(ev provider.StageEvent) {
			switch ev.Stage {
			case provider.StageAPI:
				calls = cloud.TotalCalls()
			case provider.StagePort:
				portAt = time.Now()
			}
		}}
		rep, err := provider.WaitSSH(provider.WithWaitTrace(ctx, trace), p, inst.ID, provider.SSHOptions{
			Signers: []ssh.Signer{signer}, HostKeys: pinned, CloudInit: true, Dial: sshd.DialContext,
		})
		out.APICalls += cloud.TotalCalls() - calls
		if err == nil {
			for _, st := range rep.Stages {
				out.Stages[st.Stage] = append(out.Stages[st.Stage], st.Duration)
			}
			if in, ok := modelByIP(sshd, rep); ok {
				out.PortLag = append(out.PortLag, portAt.Sub(sshd.Timeline(in).Port))
			}
		}
		if derr := p.DestroyInstance(ctx, inst.ID); err == nil {
			err = derr
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// modelByIP finds the model's record of the machine rep connected to.
func modelByIP(sshd *simssh.Server, rep *provider.SSHReport) (inst simcloud.Instance, ok bool) {
	if rep.Instance == nil {
		return simcloud.Instance{}, false
	}
	ip := rep.Instance.IP()
	for _, in := range sshd.Cloud().LiveInstances() {
		if in.IPv4 == ip || in.IPv6 == ip {
			return in, true
		}
	}
	return simcloud.Instance{}, false
}

var errNoSamples = errors.New("providertest: no samples")

// Summary returns the median and 95th percentile of stage s, or an error
// when no machine got through it.
func (t *SSHTimings) Summary(s provider.Stage) (median, p95 time.Duration, err error) {
	if len(t.Stages[s]) == 0 {
		return 0, 0, errNoSamples
	}
	return t.Median(s), t.P95(s), nil
}
