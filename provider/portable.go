package provider

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/spuffgo/spuff/provider/driver"
)

// OpenDriver builds the Provider named name over the driver o opens: the
// one implementation of Provider, which runs every rule of this package
// (validation, ownership labels, the exactly-once create, retries, pacing,
// waiting, cleanup, cancellation, error wrapping) over the driver's
// translation. Drivers' Open and New functions call it; programs call
// Open, or a driver's constructor.
func OpenDriver(ctx context.Context, name string, o driver.Opener, cfg Config) (Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, wrapErr(name, "Open", err)
	}
	t := cfg.Timeouts.WithDefaults()
	tr := &lateTransport{paced: pacedTransport{timeout: t.HTTPRequest, limit: maxResponseBytes}}
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		cp := *cfg.HTTPClient
		hc = &cp
	}
	tr.paced.base = hc.Transport
	if tr.paced.base == nil {
		tr.paced.base = http.DefaultTransport
	}
	hc.Transport = tr
	s := &driver.Settings{
		Token: string(cfg.Token), AccessKeyID: cfg.AccessKeyID,
		SecretAccessKey: string(cfg.SecretAccessKey), SessionToken: string(cfg.SessionToken),
		Region: cfg.Region, Regions: slices.Clone(cfg.Regions), Endpoint: cfg.Endpoint,
		HTTPClient: hc, PollInterval: t.PollInterval, Logger: cfg.log(), Getenv: cfg.Getenv,
	}
	d, err := o.Open(ctx, s)
	if err != nil {
		return nil, wrapErr(name, "Open", err)
	}
	info := d.Info()
	if info.Name == "" {
		info.Name = name
	}
	pacer := cfg.Pacer
	if pacer == nil {
		pacer = sharedPacer(name+"|"+info.Account, info.RateLimits...)
	}
	tr.bind(pacer, info.RequestClass)
	m := &machines{
		name:  name,
		d:     d,
		info:  info,
		owner: cfg.ownerValue(),
		pol: &policy{
			name: name, t: t, retry: cfg.Retry, wait: cfg.WaitPolicy, pacer: pacer,
			log: cfg.log(),
		},
		rules: rules{maxUserData: info.MaxUserDataBytes, userDataUTF8: info.UserDataUTF8, maxLabel: info.MaxLabelValue},
	}
	if info.RequestClass != nil {
		m.pol.pollClass = pollClass
	}
	m.snap, _ = d.(driver.Snapshotter)
	m.console, _ = d.(driver.ConsoleReader)
	m.dial = cfg.DialContext
	m.boots = cfg.BootTimes
	if m.boots == nil {
		m.boots = &defaultBootTimes
	}
	// Creations are remembered as long as a wait on them may last.
	m.born.life = max(t.InstanceReady, t.ActionComplete, consistencyWindow)
	m.unsure.life = unknownHorizon(t)
	m.jobs.life = max(t.ActionComplete, unknownHorizon(t))
	m.gone.life = destroyWindow
	m.named.life = consistencyWindow
	return m, nil
}

// pollClass is the rate-limit class a driver with request classes gives
// its reads (see driver.Info.RequestClass): waits plan their polls under it.
const pollClass = "read"

// unknownHorizon is how long a Provider remembers a create whose outcome
// was unknown: until then, a create of the same request makes no machine
// (it looks for the one that may exist); after it, the cloud's listings
// have had that long to show it, and a look-up that finds none means none
// was made. With the default Lookup of 10 s it is a minute, the time spuff
// gives any cloud to show what it made (see consistencyWindow).
func unknownHorizon(t ProviderTimeouts) time.Duration { return 6 * t.Lookup }

// lateTransport is the paced transport of a driver's SDK client, bound to
// the account's pacer once the driver says which account it acts for.
type lateTransport struct {
	paced pacedTransport
	bound atomic.Pointer[pacedTransport]
}

func (t *lateTransport) bind(p *Pacer, class func(*http.Request) string) {
	pt := t.paced
	pt.pacer, pt.class = p, class
	t.bound.Store(&pt)
}

func (t *lateTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if pt := t.bound.Load(); pt != nil {
		return pt.RoundTrip(req)
	}
	return t.paced.base.RoundTrip(req) // a driver's Open checking something
}

// machines is the Provider over a driver.
type machines struct {
	name  string
	d     driver.Driver
	snap  driver.Snapshotter // nil when the cloud has no snapshots
	info  driver.Info
	owner string
	pol   *policy
	rules rules

	// console reads console output, nil when the cloud shows none; dial
	// is Config.DialContext (see WaitSSH).
	console driver.ConsoleReader
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)

	boots   *BootTimes
	born    recent // instance IDs this Provider made, when, and their boot kind
	seen    recent // instance IDs of born the cloud has shown since: a "not found" for them means gone
	gone    recent // instance IDs this Provider destroyed lately
	named   recent // names of the machines this Provider made lately -> the ID
	jobs    recent // snapshot key/job of the snapshot jobs this Provider started
	unsure  unsure // request keys whose create's outcome was unknown
	creates flight // CreateInstance calls in progress, by request key
	snaps   flight // CreateSnapshot calls in progress, by snapshot key

	cat catalogCache // the last catalogue read (FetchCatalog)
}

var _ Provider = (*machines)(nil)

// Name returns the registered name.
func (m *machines) Name() string { return m.name }

// String describes the Provider without its credentials.
func (m *machines) String() string { return fmt.Sprintf("%s.Provider{owner: %q}", m.name, m.owner) }

// Capabilities reports what the driver can do.
func (m *machines) Capabilities() Capabilities {
	return Capabilities{
		Snapshots: m.snap != nil, SSHKeys: m.info.SSHKeys, UserData: m.info.UserData,
		IPv6: m.info.IPv6, MaxUserDataBytes: m.info.MaxUserDataBytes,
	}
}

// As reaches the driver's SDK client (see Provider.As).
func (m *machines) As(target any) bool {
	if s, ok := target.(*Stats); ok {
		*s = m.pol.stats()
		return true
	}
	if self, ok := target.(**machines); ok { // the package's functions over a Provider (WaitSSH)
		*self = m
		return true
	}
	return m.d.As(target)
}

// fail wraps err as an *Error of op about resource id, with a cancelled or
// expired context reported as such with the time since start.
func (m *machines) fail(op, resource, id string, start time.Time, err error) error {
	if err == nil {
		return nil
	}
	err = wrapErr(m.name, op, err)
	var e *Error
	if errors.As(err, &e) {
		if e.Resource == "" && e.ID == "" {
			e.Resource, e.ID = resource, id
		}
		if e.Kind == KindTimeout && e.Elapsed == 0 {
			e.Elapsed = time.Since(start)
		}
	}
	return err
}

// checkID refuses an ID not of the cloud's format, before any call: for a
// lookup it is not found (no resource has that ID); for a change it is
// invalid config naming "id" (reporting success would hide the mistake).
func (m *machines) checkID(op, resource, id string, lookup bool) error {
	err := m.d.CheckID(resource, id)
	if err == nil {
		return nil
	}
	e := &Error{Provider: m.name, Op: op, Resource: resource, ID: id, Kind: KindNotFound, Err: err}
	var de *driver.Error
	if errors.As(err, &de) {
		e.Message, e.Err = de.Message, de.Err
	}
	if !lookup {
		e.Kind, e.Field = KindInvalidConfig, "id"
	}
	return e
}

// owned reports whether labels carry this Provider's ownership label.
func (m *machines) owned(labels map[string]string) bool { return labels[OwnerLabel] == m.owner }

// destroyWindow is how long after this Provider destroyed a machine it
// takes the machine for being destroyed, whatever the cloud still shows
// of it (a droplet read just after its DELETE still looks active).
const destroyWindow = 5 * time.Minute

// view corrects what the cloud shows of a machine with what this Provider
// knows: one it destroyed lately is being destroyed.
func (m *machines) view(in *driver.Instance) *driver.Instance {
	if in != nil && in.State != driver.StateGone && in.State != driver.StateDestroying && m.gone.has(in.ID) {
		c := *in
		c.State = driver.StateDestroying
		return &c
	}
	return in
}

// live reports whether a machine counts as existing: not being destroyed,
// not gone.
func live(in *driver.Instance) bool {
	return in.State != driver.StateDestroying && in.State != driver.StateGone
}

// instance maps a driver's machine to the caller's, without spuff's own
// labels.
func (m *machines) instance(in *driver.Instance) *Instance {
	out := &Instance{
		ID: in.ID, Name: in.Name, PublicIPv4: in.IPv4, PublicIPv6: in.IPv6,
		RawStatus: in.RawState, Region: in.Region, Size: in.Size,
		Labels: userLabels(in.Labels), CreatedAt: in.CreatedAt, ExpiresAt: expiry(in.Labels),
	}
	switch in.State {
	case driver.StatePending:
		out.Status = StatusNew
	case driver.StateRunning:
		out.Status = StatusActive
	case driver.StateOff:
		out.Status = StatusOff
	case driver.StateStopped:
		out.Status = StatusArchive
	case driver.StateDestroying, driver.StateGone:
		out.Status = StatusDestroying
	}
	return out
}

// userLabels returns labels without the ones spuff sets.
func userLabels(labels map[string]string) map[string]string {
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		if k != OwnerLabel && !isReserved(k) {
			out[k] = v
		}
	}
	return out
}

func isReserved(k string) bool {
	return len(k) >= len(reservedPrefix) && k[:len(reservedPrefix)] == reservedPrefix
}

// fresh reports whether this Provider made the instance id less than
// consistencyWindow ago and the cloud has not shown it since: a "not
// found" for it then means "not visible yet", and how much of the window
// is left.
func (m *machines) fresh(id string) (time.Duration, bool) {
	age, ok := m.born.age(id)
	if !ok || age >= consistencyWindow || m.seen.has(id) {
		return 0, false
	}
	return consistencyWindow - age, true
}

// createdAt is when this Provider made id, or the zero time.
func (m *machines) createdAt(id string) time.Time {
	age, ok := m.born.age(id)
	if !ok {
		return time.Time{}
	}
	return time.Now().Add(-age)
}

// GetInstance returns the machine. A machine this Provider made moments
// ago that the cloud does not show yet is waited for (within the
// consistency window); one being destroyed is returned with
// StatusDestroying; one gone is ErrNotFound.
func (m *machines) GetInstance(ctx context.Context, id string) (*Instance, error) {
	const op = "GetInstance"
	start := time.Now()
	if err := m.checkID(op, "instance", id, true); err != nil {
		return nil, err
	}
	in, err := m.get(ctx, op, id, consistencyWindow)
	if err == nil && in.State == driver.StateGone {
		err = driver.NotFound("the instance is " + in.RawState)
	}
	if err != nil {
		return nil, m.fail(op, "instance", id, start, err)
	}
	return m.instance(in), nil
}

// get reads the machine, riding over a "not found" while the machine is
// fresh (see fresh), for at most bound.
func (m *machines) get(ctx context.Context, op, id string, bound time.Duration) (*driver.Instance, error) {
	in, err := retried(ctx, m.pol, op, func(ctx context.Context) (*driver.Instance, error) { return m.d.Get(ctx, id) })
	if KindOf(err) != KindNotFound {
		if err == nil {
			m.seen.add(id)
		}
		return m.view(in), err
	}
	left, ok := m.fresh(id)
	if !ok {
		return nil, err
	}
	err = m.whileInvisible(ctx, op, id, min(left, bound), func(ctx context.Context) error {
		var e error
		in, e = m.d.Get(ctx, id)
		return e
	})
	if err == nil {
		m.seen.add(id)
	}
	return m.view(in), err
}

// whileInvisible repeats fn while it fails with not found, for at most
// left: the cloud may not show a machine for a while after making it. It
// returns fn's last error.
func (m *machines) whileInvisible(ctx context.Context, op, id string, left time.Duration, fn func(ctx context.Context) error) error {
	var last error
	w := waiter{Provider: m.name, Op: op, Resource: "instance", ID: id, Timeout: left,
		Policy: ExponentialWait(m.pol.t.PollInterval/20, m.pol.t.PollInterval/2, 2, 0.2), Logger: m.pol.log}
	werr := w.Wait(ctx, func(ctx context.Context) (bool, string, error) {
		last = wrapErr(m.name, op, m.pol.once(ctx, op, fn))
		if KindOf(last) == KindNotFound {
			return false, "not yet visible", nil
		}
		return last == nil, "", last
	})
	if werr != nil && KindOf(last) == KindNotFound && !errors.Is(werr, context.Canceled) {
		return last
	}
	if werr != nil {
		return werr
	}
	return last
}

// DestroyInstance deletes the machine; one already gone is success. A
// machine this Provider made moments ago that the cloud does not show yet
// is waited for, so that a destroy right after a create is never lost.
func (m *machines) DestroyInstance(ctx context.Context, id string) error {
	const op = "DestroyInstance"
	start := time.Now()
	if err := m.checkID(op, "instance", id, false); err != nil {
		return err
	}
	del := func(ctx context.Context) error {
		err := m.d.Delete(ctx, id)
		if busy(wrapErr(m.name, op, err)) {
			m.seen.add(id) // the cloud shows it, busy being deleted, say
		}
		return err
	}
	err := m.whileBusy(ctx, op, "instance", id, del)
	if KindOf(err) == KindNotFound {
		if left, ok := m.fresh(id); ok {
			err = m.whileInvisible(ctx, op, id, left, del)
		}
	}
	if KindOf(err) == KindNotFound {
		return nil // already gone
	}
	if err == nil {
		m.born.remove(id)
		m.gone.add(id)
		m.pol.log.Debug("spuff: destroy accepted", "provider", m.name, "id", id)
	}
	return m.fail(op, "instance", id, start, err)
}

// busy reports whether err is the cloud's "busy, repeat later" (Hetzner's
// locked and conflict, DigitalOcean's pending event): the resource has an
// action running.
func busy(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.retry
}

// whileBusy runs fn under the retry policy and, while the cloud says the
// resource is busy with an action (see busy), again as the action may take
// minutes: bounded by ActionComplete and ctx.
func (m *machines) whileBusy(ctx context.Context, op, resource, id string, fn func(ctx context.Context) error) error {
	err := m.pol.call(ctx, op, fn)
	if !busy(err) || ctx.Err() != nil {
		return err
	}
	w := waiter{Provider: m.name, Op: op, Resource: resource, ID: id, Timeout: m.pol.t.ActionComplete,
		Policy: ExponentialWait(m.pol.t.PollInterval/10, m.pol.t.PollInterval, 1.5, 0.2), Logger: m.pol.log}
	werr := w.Wait(ctx, func(ctx context.Context) (bool, string, error) {
		err = m.pol.call(ctx, op, fn)
		if busy(err) {
			return false, "busy", nil
		}
		return true, "", nil
	})
	if werr != nil {
		return werr
	}
	return err
}

// ListInstances returns every live machine with the ownership label, all
// pages, page by page.
func (m *machines) ListInstances(ctx context.Context) ([]*Instance, error) {
	var out []*Instance
	for inst, err := range m.instances(ctx, "ListInstances", driver.Query{Labels: m.ownerQuery()}) {
		if err != nil {
			return nil, err
		}
		out = append(out, inst)
	}
	return out, nil
}

func (m *machines) ownerQuery() map[string]string { return map[string]string{OwnerLabel: m.owner} }

// instances yields the live managed machines matching q, a page at a
// time, each once.
func (m *machines) instances(ctx context.Context, op string, q driver.Query) iter.Seq2[*Instance, error] {
	return func(yield func(*Instance, error) bool) {
		start := time.Now()
		seen := map[string]bool{}
		stopped := false
		each := func(in *driver.Instance) bool {
			if seen[in.ID] || !m.owned(in.Labels) || !live(in) || !matches(in.Labels, q.Labels) {
				return true
			}
			seen[in.ID] = true
			stopped = !yield(m.instance(in), nil)
			return !stopped
		}
		err := m.pages(ctx, op, q, func(page []*driver.Instance) bool {
			for _, in := range page {
				if !each(in) {
					return false
				}
			}
			return true
		})
		// What this Provider made moments ago is listed even when the
		// cloud's listing does not show it yet (it lags a create by
		// seconds on DigitalOcean and EC2): it is read by its ID.
		for _, id := range m.born.keys() {
			if err != nil || stopped || seen[id] || m.gone.has(id) {
				continue
			}
			if age, ok := m.born.age(id); !ok || age >= consistencyWindow {
				continue
			}
			in, gerr := m.get(ctx, op, id, m.pol.t.Lookup)
			switch {
			case gerr == nil:
				each(in)
			case KindOf(gerr) != KindNotFound:
				err = gerr
			}
		}
		if err != nil && !stopped {
			yield(nil, m.fail(op, "", "", start, err))
		}
	}
}

// maxPages bounds a listing, in case an API keeps answering "next".
const maxPages = 100000

// pages calls each with every page of the machines matching q, each page
// retried on its own, until each returns false.
func (m *machines) pages(ctx context.Context, op string, q driver.Query, each func([]*driver.Instance) bool) error {
	token := ""
	for range maxPages {
		var page []*driver.Instance
		var next string
		err := m.pol.call(ctx, op, func(ctx context.Context) error {
			var err error
			page, next, err = m.d.List(ctx, q, token)
			return err
		})
		if err != nil {
			return err
		}
		for i, in := range page {
			page[i] = m.view(in)
		}
		if !each(page) || next == "" || next == token {
			return nil
		}
		token = next
	}
	return nil
}

// matches reports whether labels carry every label of want.
func matches(labels, want map[string]string) bool {
	for k, v := range want {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// ListSSHKeys returns the account's keys.
func (m *machines) ListSSHKeys(ctx context.Context) ([]*SSHKey, error) {
	const op = "ListSSHKeys"
	start := time.Now()
	if !m.info.SSHKeys {
		return nil, &Error{Kind: KindNotSupported, Provider: m.name, Op: op, Message: "the provider has no SSH keys"}
	}
	keys, err := retried(ctx, m.pol, op, m.d.Keys)
	if err != nil {
		return nil, m.fail(op, "", "", start, err)
	}
	out := make([]*SSHKey, len(keys))
	for i, k := range keys {
		out[i] = &SSHKey{ID: k.ID, Name: k.Name, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey}
	}
	return out, nil
}

// WaitReady polls the machine until it runs with a public IP. A machine
// this Provider made is polled on a schedule learned from the boot times
// of its kind seen so far (see BootTimes), and its own boot time is
// learned.
func (m *machines) WaitReady(ctx context.Context, id string) (*Instance, error) {
	const op = "WaitReady"
	start := time.Now()
	if err := m.checkID(op, "instance", id, true); err != nil {
		return nil, err
	}
	born := m.createdAt(id)
	kind, _ := m.born.value(id)
	var last *Instance
	var lastPoll time.Time // the last poll that saw the machine not ready
	seen := false
	err := m.pol.waitFor(ctx, op, "instance", id, m.pol.t.InstanceReady, m.bootSchedule(kind), born, func(ctx context.Context) (bool, string, error) {
		at := time.Now()
		in, err := m.d.Get(ctx, id)
		in = m.view(in)
		if err != nil {
			if _, fresh := m.fresh(id); fresh && !seen && driver.KindOf(err) == driver.KindNotFound {
				lastPoll = at
				return false, "not yet visible", nil
			}
			return false, "", err
		}
		seen = true
		m.seen.add(id)
		if !live(in) {
			return false, in.RawState, driver.NotFound("the instance is " + in.RawState)
		}
		last = m.instance(in)
		if !last.Ready() {
			lastPoll = at
			return false, readyState(last), nil
		}
		if kind != "" && !born.IsZero() {
			m.boots.observe(kind, bootSample(born, lastPoll, at))
		}
		return true, readyState(last), nil
	})
	if err != nil {
		return nil, m.fail(op, "instance", id, start, err)
	}
	return last, nil
}

// bootSchedule is the wait schedule of a machine of kind ("" when not
// known): from its kind's boot times seen, else the cloud's typical one.
func (m *machines) bootSchedule(kind string) WaitPolicy {
	t := m.pol.t
	floor := t.PollInterval * 38 / 100
	if kind == "" {
		return DefaultWait(m.info.ExpectedBoot, t)
	}
	return bootWait(m.boots.samples(kind), m.info.ExpectedBoot, floor, t.PollInterval)
}

// bootSample estimates a machine's boot time from when it was made, the
// last poll that saw it not ready (zero if none did) and the poll that saw
// it ready: the middle of the two polls; when the first poll already saw
// it ready, a little less than that poll's time (so that a schedule that
// starts too late learns to start earlier).
func bootSample(born, notReady, ready time.Time) time.Duration {
	if notReady.Before(born) {
		return time.Duration(0.85 * float64(ready.Sub(born)))
	}
	return notReady.Sub(born) + ready.Sub(notReady)/2
}

// readyState describes a machine for a wait's progress and timeout.
func readyState(in *Instance) string {
	ip := in.PublicIPv4.IsValid() || in.PublicIPv6.IsValid()
	switch {
	case in.Status == StatusActive && !ip:
		return in.RawStatus + " without public IP"
	case in.Status != StatusActive && ip:
		return in.RawStatus + " with public IP"
	}
	return in.RawStatus
}

// cloneLabels returns a copy of labels with extra set.
func cloneLabels(labels map[string]string, extra map[string]string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = make(map[string]string, len(extra))
	}
	maps.Copy(out, extra)
	return out
}

// Instances yields every live instance managed by spuff on p's account, as
// ListInstances returns them, but a page at a time: a caller that streams
// them holds one page in memory, not the whole listing. An error ends the
// sequence (it is yielded with a nil instance).
func Instances(ctx context.Context, p Provider) iter.Seq2[*Instance, error] {
	if m, ok := p.(*machines); ok {
		return m.instances(ctx, "ListInstances", driver.Query{Labels: m.ownerQuery()})
	}
	return func(yield func(*Instance, error) bool) {
		list, err := p.ListInstances(ctx)
		if err != nil {
			yield(nil, err)
			return
		}
		for _, in := range list {
			if !yield(in, nil) {
				return
			}
		}
	}
}
