package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

func TestRecent(t *testing.T) {
	t.Parallel()
	var r recent
	if r.has("a") {
		t.Fatal("empty recent has a key")
	}
	r.add("a")
	if age, ok := r.age("a"); !ok || age < 0 || age > time.Second {
		t.Fatalf("Age(a) = %v, %v", age, ok)
	}
	r.remove("a")
	if r.has("a") {
		t.Fatal("removed key still there")
	}
	short := recent{life: time.Nanosecond}
	short.add("b")
	time.Sleep(time.Millisecond)
	if short.has("b") {
		t.Fatal("key outlived its TTL")
	}
	// Bounded: many keys do not grow it without end, and the newest stays.
	var big recent
	for i := range 10000 {
		big.add(fmt.Sprint(i))
	}
	if !big.has("9999") {
		t.Fatal("the newest key was forgotten")
	}
	n := 0
	for i := range 10000 {
		if big.has(fmt.Sprint(i)) {
			n++
		}
	}
	if n > 4096 {
		t.Fatalf("%d keys remembered, want at most 4096", n)
	}
}

func TestOutcomeUnknown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"lost answer", io.ErrUnexpectedEOF, true},
		{"network kind", &Error{Kind: KindNetwork}, true},
		{"timeout", &Error{Kind: KindTimeout, Err: context.DeadlineExceeded}, true},
		{"503", &Error{Kind: KindAPI, Status: 503}, true},
		{"200 unreadable", &Error{Kind: KindAPI, Status: 200}, true},
		{"422 refused", &Error{Kind: KindInvalidConfig, Status: 422}, false},
		{"429 refused", &Error{Kind: KindRateLimit, Status: 429}, false},
		{"conflict", &Error{Kind: KindConflict}, false},
		{"capacity", &Error{Kind: KindCapacity, Status: 500}, false},
		{"302", &Error{Kind: KindAPI, Status: 302}, false},
		{"validation", &Error{Kind: KindInvalidConfig, Field: "Name"}, false},
		{"not found", &Error{Kind: KindNotFound}, false},
		{"wrapped 500", fmt.Errorf("create: %w", &Error{Kind: KindAPI, Status: 500}), true},
		{"sentinel auth", ErrAuthentication, false},
		{"plain", errors.New("boom"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := outcomeUnknown(tt.err); got != tt.want {
				t.Errorf("outcomeUnknown(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
