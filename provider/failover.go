package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Placement is where a machine may be made: a provider, one of its
// regions and one of its sizes.
type Placement struct {
	// Provider is the provider to make the machine with.
	Provider Provider
	// Region and Size replace InstanceRequest.Region and Size.
	Region, Size string
}

// String writes the placement as "hetzner fsn1 cx22".
func (p Placement) String() string { return p.providerName() + " " + p.Region + " " + p.Size }

func (p Placement) providerName() string {
	if p.Provider == nil {
		return "<nil>"
	}
	return p.Provider.Name()
}

// MarshalJSON writes the placement with its provider's name:
// {"provider":"hetzner","region":"fsn1","size":"cx22"}.
func (p Placement) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Provider string `json:"provider"`
		Region   string `json:"region"`
		Size     string `json:"size"`
	}{p.providerName(), p.Region, p.Size})
}

// Grid returns the placements of p in every region and size, region by
// region: every size in regions[0], then every size in regions[1], and so
// on. It is the list a command line such as
// "--region fsn1,nbg1,hel1 --size cx22,cpx11" names: the region is the
// stronger preference (where the machine runs), the sizes alternatives of
// one another.
func Grid(p Provider, regions, sizes []string) []Placement {
	out := make([]Placement, 0, len(regions)*len(sizes))
	for _, r := range regions {
		for _, s := range sizes {
			out = append(out, Placement{Provider: p, Region: r, Size: s})
		}
	}
	return out
}

// Attempt is one placement CreateWithFailover tried, and why it failed.
type Attempt struct {
	// Placement is where the machine was asked for.
	Placement Placement
	// Err is the error CreateInstance returned there.
	Err error
}

// FailoverError is the error of a CreateWithFailover that made no
// machine: every placement it tried, in order, with its error. It wraps
// the error of the last placement tried — the one that decided the
// outcome — so errors.Is(err, ErrCapacity) holds when every placement
// was refused for capacity, and errors.As reaches that *Error (and its
// Leftover, should that placement have left a machine behind).
type FailoverError struct {
	// Name is the machine's name.
	Name string
	// Attempts are the placements tried, in the order tried.
	Attempts []Attempt
	// Untried is the number of placements not tried: the failover stops
	// at the first error that is not a capacity refusal.
	Untried int
}

// Error lists every placement tried, one per line.
func (e *FailoverError) Error() string {
	var b strings.Builder
	n := len(e.Attempts)
	fmt.Fprintf(&b, "spuff: CreateWithFailover %q: ", e.Name)
	switch last := e.Unwrap(); {
	case e.Untried == 0 && KindOf(last) == KindCapacity:
		fmt.Fprintf(&b, "no placement had room (%d tried)", n)
	default:
		fmt.Fprintf(&b, "placement %d of %d failed (%s), %d not tried: only a capacity refusal moves on", n, n+e.Untried, KindOf(last), e.Untried)
	}
	for i, a := range e.Attempts {
		fmt.Fprintf(&b, "\n  %d. %s: %s", i+1, a.Placement, shortError(a.Err))
	}
	return b.String()
}

// Unwrap returns the error of the last placement tried.
func (e *FailoverError) Unwrap() error {
	if len(e.Attempts) == 0 {
		return nil
	}
	return e.Attempts[len(e.Attempts)-1].Err
}

// shortError is err's text without the provider and operation an
// attempt's line already says.
func shortError(err error) string {
	var e *Error
	if errors.As(err, &e) && err == error(e) {
		c := *e
		c.Provider, c.Op, c.Resource, c.ID = "", "", "", ""
		return strings.TrimPrefix(c.Error(), "spuff: ")
	}
	return err.Error()
}

// failoverStep is one placement of a failover, checked.
type failoverStep struct {
	pl  Placement
	req InstanceRequest
	m   *machines // nil for a Provider not opened by this package
	key string    // the request key of req on m
}

// CreateWithFailover makes one machine of req at the first of placements
// that has room for it: it calls CreateInstance with req's Region and Size
// replaced by each placement's, in order, and moves on only when the cloud
// refuses for capacity (ErrCapacity: no room for that size there now).
// Any other error stops it: a failover never turns an invalid request, a
// quota, a conflict or an unknown outcome into a machine elsewhere.
//
// At most one machine results, whatever answers are lost: every placement
// is one request of the exactly-once protocol (see CreateInstance), a
// capacity refusal counts only once the protocol knows that no earlier
// attempt of that placement made the machine (until then the placement
// fails with ErrOutcomeUnknown and the failover stops), a placement whose
// earlier create had an unknown outcome is tried first, and a machine of
// req's name that another placement of the list made (an earlier call's
// lost answer, a caller's retry) is adopted, not doubled. Repeating the
// same call is therefore safe, and is how an ErrOutcomeUnknown resolves.
// Concurrent identical calls share one run.
//
// Every placement is validated before any network call; an invalid one is
// an ErrInvalidConfig naming it ("Placements[1].Size"). When no machine
// was made, the error is a *FailoverError listing every placement tried
// and its error. (These guarantees hold for Providers opened by this
// package; another Provider's CreateInstance is taken at its word.)
func CreateWithFailover(ctx context.Context, req InstanceRequest, placements []Placement) (*Instance, error) {
	steps, err := failoverSteps(req, placements)
	if err != nil {
		return nil, err
	}
	run := func(ctx context.Context) (any, error) { return runFailover(ctx, req.Name, steps) }
	var v any
	if m := steps[0].m; m != nil {
		v, err = m.creates.do(ctx, "failover:"+failoverKey(steps), run)
	} else {
		v, err = run(ctx)
	}
	if err != nil {
		return nil, err
	}
	return v.(*Instance).Clone(), nil
}

// failoverSteps checks every placement's request before any call.
func failoverSteps(req InstanceRequest, placements []Placement) ([]failoverStep, error) {
	const op = "CreateWithFailover"
	if len(placements) == 0 {
		return nil, &Error{Kind: KindInvalidConfig, Op: op, Field: "placements", Message: "no placement to create the machine at"}
	}
	steps := make([]failoverStep, 0, len(placements))
	for i, pl := range placements {
		field := "Placements[" + strconv.Itoa(i) + "]"
		if pl.Provider == nil {
			return nil, &Error{Kind: KindInvalidConfig, Op: op, Field: field + ".Provider", Message: "no provider"}
		}
		for j, prev := range steps {
			if prev.pl.Provider == pl.Provider && prev.pl.Region == pl.Region && prev.pl.Size == pl.Size {
				return nil, &Error{Kind: KindInvalidConfig, Provider: pl.Provider.Name(), Op: op, Field: field,
					Message: fmt.Sprintf("placement %s repeats Placements[%d]", pl, j)}
			}
		}
		r := req
		r.Region, r.Size = pl.Region, pl.Size
		st := failoverStep{pl: pl, req: r}
		var err error
		if m, ok := pl.Provider.(*machines); ok {
			st.m = m
			if err = r.validate(m.rules); err == nil {
				err = m.d.CheckRequest(driverRequest(&r))
			}
			st.key = requestKey(m.owner, &r)
		} else {
			err = r.Validate()
		}
		if err != nil {
			var e *Error
			if !errors.As(wrapErr(pl.Provider.Name(), op, err), &e) {
				return nil, err
			}
			if e.Field == "Region" || e.Field == "Size" {
				e.Field = field + "." + e.Field
			}
			e.Message = joinMessage("placement "+pl.String(), e.Message)
			return nil, e
		}
		steps = append(steps, st)
	}
	return steps, nil
}

// failoverKey identifies a failover: its placements' requests in order.
func failoverKey(steps []failoverStep) string {
	h := sha256.New()
	for _, s := range steps {
		key := s.key
		if s.m == nil {
			key = fmt.Sprintf("%p/%s/%s", s.pl.Provider, s.pl.Region, s.pl.Size)
		}
		fmt.Fprintf(h, "%d:%s;%d:%s;", len(s.pl.providerName()), s.pl.providerName(), len(key), key)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// runFailover tries the placements (see CreateWithFailover).
func runFailover(ctx context.Context, name string, steps []failoverStep) (*Instance, error) {
	const op = "CreateWithFailover"
	// A placement whose earlier create may have made the machine is tried
	// first: its create looks for that machine, or repeats that call
	// exactly. Two such placements cannot both be tried without risking
	// two machines.
	var unsure []int
	for i, s := range steps {
		if s.m == nil {
			continue
		}
		if _, ok := s.m.unsure.get(s.key); ok {
			unsure = append(unsure, i)
		}
	}
	switch len(unsure) {
	case 0:
	case 1:
		i := unsure[0]
		steps = append(append([]failoverStep{steps[i]}, steps[:i]...), steps[i+1:]...)
	default:
		var where []string
		for _, i := range unsure {
			where = append(where, steps[i].pl.String())
		}
		return nil, &Error{Kind: KindOutcomeUnknown, Provider: steps[unsure[0]].pl.providerName(), Op: op, Resource: "instance",
			Message: fmt.Sprintf("earlier creates of %q at %s may each have made the machine, and none is listed yet; "+
				"repeat the same call once the cloud lists it (it is then adopted) or the outcome horizon has passed", name, strings.Join(where, " and "))}
	}
	ferr := &FailoverError{Name: name}
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			// Stopped before this placement: it is listed with why.
			ferr.Attempts = append(ferr.Attempts, Attempt{Placement: s.pl, Err: wrapErr(s.pl.providerName(), op, err)})
			ferr.Untried = len(steps) - i - 1
			break
		}
		inst, err := s.pl.Provider.CreateInstance(ctx, s.req)
		if err == nil {
			tried(ctx, Attempt{Placement: s.pl})
			return inst, nil
		}
		if s.m != nil && KindOf(err) == KindConflict {
			if sib := s.m.sibling(ctx, err, steps); sib != nil {
				tried(ctx, Attempt{Placement: s.pl})
				return sib, nil
			}
		}
		tried(ctx, Attempt{Placement: s.pl, Err: err})
		ferr.Attempts = append(ferr.Attempts, Attempt{Placement: s.pl, Err: err})
		if KindOf(err) != KindCapacity || ctx.Err() != nil {
			ferr.Untried = len(steps) - i - 1
			break
		}
	}
	return nil, ferr
}

// sibling returns the machine a conflict names when another placement of
// the same failover made it (on m): the same request but for its region
// and size, which the failover adopts. It returns nil otherwise.
func (m *machines) sibling(ctx context.Context, conflict error, steps []failoverStep) *Instance {
	var e *Error
	if !errors.As(conflict, &e) || e.Existing == "" {
		return nil
	}
	in, err := m.get(ctx, "CreateWithFailover", e.Existing, m.pol.t.Lookup)
	if err != nil || !live(in) || !m.owned(in.Labels) {
		return nil
	}
	for _, s := range steps {
		if s.m == m && in.Labels[keyLabel] == s.key {
			m.unsure.remove(s.key)
			m.pol.log.Debug("spuff: adopting the machine another placement of the failover made", "provider", m.name, "id", in.ID)
			return m.instance(in)
		}
	}
	return nil
}

// capacityAfterUnknown resolves a create refused for capacity after an
// attempt of the same request had an unknown outcome (in this call, or in
// an earlier one not yet past the outcome horizon). The refusal of the
// repeat does not prove that the earlier attempt made nothing, and a
// failover moves on after ErrCapacity: so the machine is looked for first
// (found: adopted); not found, the create's outcome is still unknown until
// the horizon, and only after it is the refusal the answer.
func (m *machines) capacityAfterUnknown(ctx context.Context, key, kind string, refusal error) (*Instance, error) {
	found, err := m.lookForKey(ctx, key)
	switch {
	case found != nil:
		m.unsure.remove(key)
		m.born.addValue(found.ID, kind)
		m.named.addValue(found.Name, found.ID)
		m.pol.log.Debug("spuff: a create refused for capacity had made its machine earlier; adopted", "provider", m.name, "id", found.ID)
		return m.instance(found), nil
	case err != nil:
		return nil, m.mayExist(err, true, key)
	}
	if c, pending := m.unsure.get(key); pending {
		e := m.outcomeUnknown(key, nil).(*Error)
		e.Message = joinMessage(e.Message, fmt.Sprintf("a later attempt was refused for capacity (%s) but cannot tell whether the earlier one, %s ago, made the machine",
			shortError(refusal), time.Since(c.at).Round(time.Millisecond)))
		return nil, e
	}
	return nil, refusal
}
