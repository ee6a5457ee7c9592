package provider

import "context"

// FailoverTrace receives the placements CreateWithFailover tries, as they
// are tried, as WaitTrace receives a wait's polls: a command line shows
// each placement and why the cloud refused it while the failover goes on.
// Its function must be quick and safe for concurrent use.
type FailoverTrace struct {
	// Tried is called after each placement's CreateInstance returned,
	// with its error: nil for the placement that ended the failover with
	// a machine (made there, or, after a conflict there, the machine of
	// the same request another placement of the list had made).
	Tried func(Attempt)
}

type failoverTraceKey struct{}

// WithFailoverTrace returns a context whose CreateWithFailover calls
// report to trace. A call that joins a concurrent identical call (see
// CreateWithFailover) reports nothing: the call it joined tries the
// placements.
func WithFailoverTrace(ctx context.Context, trace *FailoverTrace) context.Context {
	return context.WithValue(ctx, failoverTraceKey{}, trace)
}

// tried reports an attempt to ctx's FailoverTrace, if any.
func tried(ctx context.Context, a Attempt) {
	if t, _ := ctx.Value(failoverTraceKey{}).(*FailoverTrace); t != nil && t.Tried != nil {
		t.Tried(a)
	}
}
