package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// RetryPolicy retries calls that are safe to repeat (reads, deletes, and
// creates protected by an idempotency key) when they fail with a retryable
// error (see IsRetryable). It backs off exponentially with jitter and waits
// at least as long as a Retry-After asks.
//
// A create with no idempotency protection must never go through a
// RetryPolicy: a lost answer would make a second machine.
type RetryPolicy struct {
	// MaxAttempts bounds the attempts, the first included; 0 means 5.
	MaxAttempts int
	// InitialDelay is the first backoff; 0 means 250 ms.
	InitialDelay time.Duration
	// MaxDelay caps each backoff; 0 means 15 s.
	MaxDelay time.Duration
	// AttemptTimeout bounds each attempt; 0 means no bound beyond ctx.
	AttemptTimeout time.Duration
	// OnRetry, if set, is called before each retry with the attempt that
	// failed (1 for the first), its error and the delay before the next.
	OnRetry func(attempt int, err error, delay time.Duration) `json:"-"`
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 5
	}
	if p.InitialDelay <= 0 {
		p.InitialDelay = 250 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 15 * time.Second
	}
	return p
}

// Do calls fn until it succeeds, fails with an error that is not retryable,
// the attempts run out or ctx ends, and returns fn's last error. fn must be
// safe to repeat.
func (p RetryPolicy) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	return p.loop(ctx, func(ctx context.Context) (bool, error) {
		err := fn(ctx)
		return IsRetryable(err), err
	})
}

// loop is Do with fn saying whether its error is worth another attempt.
func (p RetryPolicy) loop(ctx context.Context, fn func(ctx context.Context) (bool, error)) error {
	p = p.withDefaults()
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.InitialDelay,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         p.MaxDelay,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	var timer *time.Timer
	for attempt := 1; ; attempt++ {
		again, err := p.attempt(ctx, fn)
		if err == nil || attempt >= p.MaxAttempts || !again || ctx.Err() != nil {
			return err
		}
		delay := b.NextBackOff()
		if ra, ok := RetryAfter(err); ok && ra > delay {
			delay = ra
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			return err // no time left for another attempt
		}
		if p.OnRetry != nil {
			p.OnRetry(attempt, err, delay)
		}
		if timer == nil {
			timer = time.NewTimer(delay)
			defer timer.Stop()
		} else {
			timer.Reset(delay)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up retrying: %w)", err, ctx.Err())
		case <-timer.C:
		}
	}
}

func (p RetryPolicy) attempt(ctx context.Context, fn func(ctx context.Context) (bool, error)) (bool, error) {
	if p.AttemptTimeout <= 0 {
		return fn(ctx)
	}
	actx, cancel := context.WithTimeout(ctx, p.AttemptTimeout)
	defer cancel()
	return fn(actx)
}
