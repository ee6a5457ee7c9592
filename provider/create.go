package provider

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/spuffgo/spuff/provider/driver"
)

// The exactly-once create protocol
//
// One logical request is identified by its key: a hash of the owner and of
// every request field that changes the machine (name, region, size, image
// spec, user data, labels, SSH keys) — never of values resolved from the
// cloud, such as the AMI an Ubuntu version maps to today. The key is set
// on the machine as the label spuff-key, at creation.
//
// CreateInstance then:
//
//  1. shares one attempt among concurrent identical creates in this
//     process (the followers get the leader's answer);
//  2. looks for a live machine of the request's name: one carrying the
//     request's key is the same request, made before (a lost answer, a
//     caller's retry): it is adopted; one managed by this owner with
//     another key, or — where names are unique — anyone's, is a conflict
//     (ErrConflict, Error.Existing names it): never adopted, never
//     destroyed;
//  3. creates the machine with the key, under the retry policy. Each call
//     has its own idempotency token, the same for all its attempts, which
//     a cloud with native idempotency is given (EC2's ClientToken, which
//     EC2 compares with every parameter and remembers a day after the
//     machine is gone: a token is never reused by a later call, so a
//     republished image or any number of earlier create/destroy cycles
//     never collide with it). An attempt whose outcome is unknown (no
//     answer, a 5xx, a timeout) is repeated only where repeating is safe:
//     with the same token under native idempotency, or where names are
//     unique (the repeat then fails with a conflict, resolved as in 2).
//     Elsewhere (DigitalOcean) spuff looks for a machine with the key for
//     up to ProviderTimeouts.Lookup; found, it is adopted; not found, the
//     call fails with ErrOutcomeUnknown, and creates nothing.
//  4. remembers an unknown outcome for 6 × Lookup (a minute by default): until then a create
//     of the same request in this process looks for the machine first
//     (with the same token and parameters under native idempotency), and
//     makes none while one may exist but is not listed yet.
//
// A create thus costs a bounded number of calls whatever the history: one
// look-up by name and one create, plus the look-ups and repeats of
// unknown outcomes, each bounded by the retry policy and Lookup.

// keyLabel is the label that carries a request's key.
const keyLabel = reservedPrefix + "key"

// requestKey returns the key of req for owner: 32 hex digits.
func requestKey(owner string, req *InstanceRequest) string {
	h := sha256.New()
	put := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	put("spuff/instance/v1")
	put(owner)
	put(req.Name)
	put(req.Region)
	put(req.Size)
	put(req.Image.Kind.String())
	put(req.Image.Value)
	put(req.UserData)
	keys := make([]string, 0, len(req.Labels))
	for k := range req.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	put(strconv.Itoa(len(keys)))
	for _, k := range keys {
		put(k)
		put(req.Labels[k])
	}
	ssh := slices.Clone(req.SSHKeys)
	sort.Strings(ssh)
	put(strconv.Itoa(len(ssh)))
	for _, k := range ssh {
		put(k)
	}
	if req.TTL != 0 {
		put("ttl:" + req.TTL.String())
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// newToken returns a create call's idempotency token: 48 hex digits.
func newToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// unsure remembers the creates whose outcome was unknown, by request key:
// the token and plan of the call, so that a later call of the same request
// repeats it exactly.
type unsure struct {
	life time.Duration
	mu   sync.Mutex
	m    map[string]unsureCall
}

type unsureCall struct {
	at time.Time
	in *driver.CreateInput // what the call sent: repeated exactly
}

func (u *unsure) get(key string) (unsureCall, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	c, ok := u.m[key]
	if ok && time.Since(c.at) >= u.life {
		delete(u.m, key)
		ok = false
	}
	return c, ok
}

func (u *unsure) add(key string, c unsureCall) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]unsureCall{}
	}
	if old, ok := u.m[key]; ok {
		c.at = old.at // the first unknown outcome starts the horizon
	}
	if len(u.m) >= maxRecent {
		for k, v := range u.m {
			if time.Since(v.at) >= u.life {
				delete(u.m, k)
			}
		}
	}
	u.m[key] = c
}

func (u *unsure) remove(key string) {
	u.mu.Lock()
	delete(u.m, key)
	u.mu.Unlock()
}

// flight runs one call per key at a time; concurrent callers of the same
// key share its result.
type flight struct {
	mu sync.Mutex
	m  map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	ctx  context.Context
	val  any
	err  error
}

// do runs fn for key, or waits for the run in progress (bounded by ctx). A
// run that ended because its own caller's context ended is not shared: the
// waiter runs fn itself.
func (f *flight) do(ctx context.Context, key string, fn func(ctx context.Context) (any, error)) (any, error) {
	for {
		f.mu.Lock()
		if c, ok := f.m[key]; ok {
			f.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if c.err != nil && c.ctx.Err() != nil && ctx.Err() == nil {
				continue
			}
			return c.val, c.err
		}
		c := &flightCall{done: make(chan struct{}), ctx: ctx}
		if f.m == nil {
			f.m = map[string]*flightCall{}
		}
		f.m[key] = c
		f.mu.Unlock()
		func() {
			defer func() {
				f.mu.Lock()
				delete(f.m, key)
				f.mu.Unlock()
				close(c.done)
			}()
			c.val, c.err = fn(ctx)
		}()
		return c.val, c.err
	}
}

// driverRequest translates req.
func driverRequest(req *InstanceRequest) *driver.Request {
	dr := &driver.Request{
		Name: req.Name, Region: req.Region, Size: req.Size,
		Image:    driver.Image{Kind: req.Image.Kind.String(), Value: req.Image.Value},
		UserData: req.UserData, SSHKeys: slices.Clone(req.SSHKeys), Labels: cloneLabels(req.Labels, nil),
	}
	if req.TTL > 0 {
		dr.ExpiresAt = time.Now().Add(req.TTL).Truncate(time.Second)
	}
	return dr
}

// expiryValue is the label value of an expiry: Unix seconds.
func expiryValue(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// expiry reads the expiry label of labels; the zero time when none.
func expiry(labels map[string]string) time.Time {
	n, err := strconv.ParseInt(labels[expiresLabel], 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// CreateInstance validates req, then runs the exactly-once protocol (see
// above) and returns the machine, possibly still booting.
func (m *machines) CreateInstance(ctx context.Context, req InstanceRequest) (*Instance, error) {
	const op = "CreateInstance"
	start := time.Now()
	if err := req.validate(m.rules); err != nil {
		return nil, m.fail(op, "", "", start, err)
	}
	dr := driverRequest(&req)
	if err := m.d.CheckRequest(dr); err != nil {
		return nil, m.fail(op, "", "", start, err)
	}
	key := requestKey(m.owner, &req)
	v, err := m.creates.do(ctx, key, func(ctx context.Context) (any, error) {
		defer m.pol.pacer.beginWait()() // the machine is about to be awaited: plan the waits' share with it
		return m.create(ctx, dr, key, bootKind(m.name, &req))
	})
	if err != nil {
		return nil, m.fail(op, "instance", "", start, err)
	}
	return v.(*Instance).Clone(), nil
}

func (m *machines) create(ctx context.Context, dr *driver.Request, key, kind string) (*Instance, error) {
	const op = "CreateInstance"
	prior, wasUnsure := m.unsure.get(key)
	// The look-ups before the create, and the create, are new work: they
	// yield to the calls for machines already made (see yieldToProgress).
	// The look-ups after an unknown outcome are not: a machine may exist.
	newWork := yieldToProgress(ctx)
	if inst, err := m.existing(newWork, dr.Name, key); err != nil || inst != nil {
		if inst != nil {
			m.unsure.remove(key)
		}
		return inst, err
	}
	lookups := !m.info.NativeIdempotency && !m.info.UniqueNames
	if wasUnsure && lookups {
		// An earlier create of this request may have made the machine,
		// which the listing may not show yet.
		found, err := m.lookForKey(ctx, key)
		switch {
		case found != nil:
			m.unsure.remove(key)
			m.born.addValue(found.ID, kind)
			m.named.addValue(found.Name, found.ID)
			return m.instance(found), nil
		case err != nil:
			return nil, m.outcomeUnknown(key, err)
		case time.Since(prior.at) < m.unsure.life:
			return nil, m.outcomeUnknown(key, nil)
		}
		m.unsure.remove(key)
		wasUnsure = false
	}
	own := map[string]string{OwnerLabel: m.owner, keyLabel: key}
	if !dr.ExpiresAt.IsZero() {
		own[expiresLabel] = expiryValue(dr.ExpiresAt)
	}
	in := &driver.CreateInput{Request: dr, Token: newToken(), Labels: cloneLabels(dr.Labels, own)}
	if wasUnsure && prior.in != nil {
		c := *prior.in // repeat that call exactly: its token, plan and expiry
		in = &c
	} else {
		plan, err := retried(newWork, m.pol, op, func(ctx context.Context) (any, error) { return m.d.Prepare(ctx, dr) })
		if err != nil {
			return nil, err
		}
		in.Plan = plan
	}

	var made *driver.Instance
	var madeAt time.Time // when the attempt that made it reached the cloud
	unknown := false     // an attempt of this call may have made the machine
	reused := false      // the token already named a machine since destroyed
	err := m.pol.loop(ctx, op, func(ctx context.Context) (bool, error) {
		var out *driver.Instance
		ctx, sent := withSentAt(yieldToProgress(ctx))
		defer func() { madeAt = sent() }()
		err := m.pol.once(ctx, op, func(ctx context.Context) error {
			var err error
			out, err = m.d.Create(ctx, in)
			if err == nil && out == nil {
				err = driver.Lost("the create answer has no machine", nil)
			}
			return err
		})
		switch {
		case err == nil && live(out):
			made = out
			return false, nil
		case err == nil && !reused:
			// The repeated token of an earlier call names a machine
			// destroyed since: this request needs a new one.
			reused, in.Token = true, newToken()
			return true, &Error{Kind: KindUnknown, Message: "the create's token named a destroyed machine"}
		case err == nil:
			return false, &Error{Kind: KindAPI, Message: "the cloud answered the create with a machine that is " + out.RawState}
		case KindOf(err) == KindConflict && m.info.UniqueNames:
			holder, again, herr := m.nameHolder(ctx, dr.Name, key)
			if holder != nil {
				made = holder
				return false, nil
			}
			return again, herr
		case outcomeUnknown(err):
			unknown = true
			m.unsure.add(key, unsureCall{at: time.Now(), in: in})
			return !lookups && ctx.Err() == nil, err
		}
		return IsRetryable(err), err
	})
	if made != nil {
		m.unsure.remove(key)
		m.born.addAt(made.ID, kind, madeAt) // WaitReady schedules from then; a "not found" soon means "not visible yet"
		m.named.addValue(made.Name, made.ID)
		m.pol.log.Debug("spuff: created", "provider", m.name, "id", made.ID, "name", made.Name)
		return m.instance(made), nil
	}
	if KindOf(err) == KindCapacity && (unknown || wasUnsure) && ctx.Err() == nil {
		// A refusal for capacity tells nothing of an earlier attempt
		// whose outcome was unknown (failover.go).
		return m.capacityAfterUnknown(ctx, key, kind, err)
	}
	if !unknown || ctx.Err() != nil {
		return nil, m.mayExist(err, unknown, key)
	}
	if lookups {
		found, lerr := m.lookForKey(ctx, key)
		if found != nil {
			m.unsure.remove(key)
			m.born.addValue(found.ID, kind)
			m.named.addValue(found.Name, found.ID)
			m.pol.log.Debug("spuff: adopted the machine a create with a lost answer made", "provider", m.name, "id", found.ID)
			return m.instance(found), nil
		}
		if lerr != nil && ctx.Err() != nil {
			return nil, m.mayExist(lerr, true, key)
		}
		return nil, m.outcomeUnknown(key, err)
	}
	return nil, m.mayExist(err, true, key)
}

// mayExist notes on a create's error that its machine may exist.
func (m *machines) mayExist(err error, unknown bool, key string) error {
	var e *Error
	if unknown && errors.As(err, &e) {
		e.Message = joinMessage(e.Message, fmt.Sprintf("the machine may have been made (labelled %s=%s): CreateInstance with the same request adopts it rather than making a second", keyLabel, key))
	}
	return err
}

// outcomeUnknown is the error of a create that may have made its machine,
// which no look-up found yet.
func (m *machines) outcomeUnknown(key string, cause error) error {
	return &Error{Kind: KindOutcomeUnknown, Provider: m.name, Op: "CreateInstance", Resource: "instance",
		Message: fmt.Sprintf("a create of this request may have made its machine, and no machine labelled %s=%s is listed yet; "+
			"repeat the same request: it adopts the machine once the cloud lists it, and makes one only if none appears within %s",
			keyLabel, key, m.unsure.life), Err: cause}
}

func joinMessage(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// existing looks for a live machine named name: one with the request's
// key is returned (the oldest, should there be several); one managed by
// this owner with another key, or anyone's where names are unique, is a
// conflict.
func (m *machines) existing(ctx context.Context, name, key string) (*Instance, error) {
	const op = "CreateInstance"
	var found, other *driver.Instance
	listed := map[string]bool{}
	consider := func(in *driver.Instance) {
		listed[in.ID] = true
		if in.Name != name || !live(in) {
			return
		}
		switch owned := m.owned(in.Labels); {
		case owned && in.Labels[keyLabel] == key:
			if found == nil || in.CreatedAt.Before(found.CreatedAt) {
				found = in
			}
		case (owned || m.info.UniqueNames) && other == nil:
			other = in
		}
	}
	err := m.pages(ctx, op, driver.Query{Name: name}, func(page []*driver.Instance) bool {
		for _, in := range page {
			consider(in)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	// A machine of this name this Provider made moments ago may not be
	// listed yet (DigitalOcean's listings lag a create by seconds): it is
	// read by its ID.
	if id, ok := m.named.value(name); ok && !listed[id] && !m.gone.has(id) {
		in, err := m.get(ctx, op, id, consistencyWindow)
		switch {
		case err == nil:
			consider(in)
		case KindOf(err) != KindNotFound:
			return nil, err
		}
	}
	switch {
	case found != nil:
		m.pol.log.Debug("spuff: adopting the machine of the same request", "provider", m.name, "id", found.ID)
		return m.instance(found), nil
	case other != nil:
		return nil, m.conflict(name, other)
	}
	return nil, nil
}

// conflict is the error of a name held by another machine.
func (m *machines) conflict(name string, in *driver.Instance) error {
	why := "which spuff does not manage (owner " + m.owner + ")"
	if m.owned(in.Labels) {
		why = "made by spuff for a request with other settings (size, region, image, user data, labels or SSH keys)"
	}
	return &Error{Kind: KindConflict, Provider: m.name, Op: "CreateInstance", Resource: "instance", Field: "Name", Existing: in.ID,
		Message: fmt.Sprintf("a machine named %q already exists (%s, %s in %s), %s; destroy it or choose another name", name, in.ID, in.Size, in.Region, why)}
}

// nameHolder resolves a create refused because its name is taken, on a
// cloud with unique names: the holder is adopted when it is the same
// request's, waited for when it is being destroyed (again: create anew),
// a conflict otherwise.
func (m *machines) nameHolder(ctx context.Context, name, key string) (holder *driver.Instance, again bool, err error) {
	const op = "CreateInstance"
	// The holder is listed at once, except in a race with its own creation
	// or deletion: look again a few times.
	w := waiter{Provider: m.name, Op: op, Resource: "instance", Timeout: m.pol.t.Lookup,
		Policy: ExponentialWait(m.pol.t.Lookup/50, m.pol.t.Lookup/5, 2, 0.2), Logger: m.pol.log}
	var h *driver.Instance
	err = w.Wait(ctx, func(ctx context.Context) (bool, string, error) {
		h = nil
		err := m.pages(ctx, op, driver.Query{Name: name}, func(page []*driver.Instance) bool {
			for _, in := range page {
				if in.Name == name && in.State != driver.StateGone {
					h = in
					return false
				}
			}
			return true
		})
		return h != nil, "name taken by a machine not listed yet", err
	})
	switch {
	case err != nil && h == nil:
		return nil, ctx.Err() == nil && KindOf(err) == KindTimeout, err
	case m.owned(h.Labels) && h.Labels[keyLabel] == key && live(h):
		return h, false, nil
	case !live(h):
		// Being destroyed: the name is free once it is gone.
		gone := waiter{Provider: m.name, Op: op, Resource: "instance", ID: h.ID, Timeout: m.pol.t.InstanceReady,
			Policy: ExponentialWait(m.pol.t.PollInterval/10, m.pol.t.PollInterval, 1.5, 0.2), Logger: m.pol.log}
		err := gone.Wait(ctx, func(ctx context.Context) (bool, string, error) {
			in, err := m.d.Get(ctx, h.ID)
			if driver.KindOf(err) == driver.KindNotFound {
				return true, "gone", nil
			}
			if err != nil {
				return false, "", err
			}
			return in.State == driver.StateGone, in.RawState, nil
		})
		if err != nil {
			return nil, false, wrapErr(m.name, op, err)
		}
		return nil, true, &Error{Kind: KindConflict, Message: "the name was held by a machine being destroyed"}
	}
	return nil, false, m.conflict(name, h)
}

// lookForKey looks for a live machine carrying the request's key, for up
// to Lookup (see lookFor). It returns nil when none was listed in that
// time.
func (m *machines) lookForKey(ctx context.Context, key string) (*driver.Instance, error) {
	const op = "CreateInstance"
	q := driver.Query{Labels: map[string]string{OwnerLabel: m.owner, keyLabel: key}}
	var found *driver.Instance
	err := lookFor(ctx, m.pol.t.Lookup, func(ctx context.Context) (bool, error) {
		err := m.pages(ctx, op, q, func(page []*driver.Instance) bool {
			for _, in := range page {
				if live(in) && m.owned(in.Labels) && in.Labels[keyLabel] == key {
					found = in
					return false
				}
			}
			return true
		})
		return found != nil, err
	})
	return found, err
}

// lookFor calls look until it finds what it looks for or fails, for up
// to window: at once, then 1/8, 2/8, 4/8 and 8/8 of window later (a
// listing that lags a create shows it after a while). It returns ctx's
// error when ctx ends first.
func lookFor(ctx context.Context, window time.Duration, look func(ctx context.Context) (bool, error)) error {
	var timer *time.Timer
	for _, eighths := range []time.Duration{0, 1, 1, 2, 4} {
		if eighths > 0 {
			if timer == nil {
				timer = time.NewTimer(window * eighths / 8)
				defer timer.Stop()
			} else {
				timer.Reset(window * eighths / 8)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		}
		if found, err := look(ctx); found || err != nil {
			return err
		}
	}
	return nil
}
