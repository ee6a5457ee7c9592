package provider_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
)

func TestRecent(t *testing.T) {
	t.Parallel()
	var r provider.Recent
	if r.Has("a") {
		t.Fatal("empty Recent has a key")
	}
	r.Add("a")
	if age, ok := r.Age("a"); !ok || age < 0 || age > time.Second {
		t.Fatalf("Age(a) = %v, %v", age, ok)
	}
	r.Remove("a")
	if r.Has("a") {
		t.Fatal("removed key still there")
	}
	short := provider.Recent{TTL: time.Nanosecond}
	short.Add("b")
	time.Sleep(time.Millisecond)
	if short.Has("b") {
		t.Fatal("key outlived its TTL")
	}
	// Bounded: many keys do not grow it without end, and the newest stays.
	var big provider.Recent
	for i := range 10000 {
		big.Add(fmt.Sprint(i))
	}
	if !big.Has("9999") {
		t.Fatal("the newest key was forgotten")
	}
	n := 0
	for i := range 10000 {
		if big.Has(fmt.Sprint(i)) {
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
		{"network kind", &provider.Error{Kind: provider.KindNetwork}, true},
		{"timeout", &provider.Error{Kind: provider.KindTimeout, Err: context.DeadlineExceeded}, true},
		{"503", &provider.Error{Kind: provider.KindAPI, Status: 503}, true},
		{"200 unreadable", &provider.Error{Kind: provider.KindAPI, Status: 200}, true},
		{"422 refused", &provider.Error{Kind: provider.KindInvalidConfig, Status: 422}, false},
		{"429 refused", &provider.Error{Kind: provider.KindRateLimit, Status: 429}, false},
		{"302", &provider.Error{Kind: provider.KindAPI, Status: 302}, false},
		{"validation", &provider.Error{Kind: provider.KindInvalidConfig, Field: "Name"}, false},
		{"not found", &provider.Error{Kind: provider.KindNotFound}, false},
		{"wrapped 500", fmt.Errorf("create: %w", &provider.Error{Kind: provider.KindAPI, Status: 500}), true},
		{"sentinel auth", provider.ErrAuthentication, false},
		{"plain", errors.New("boom"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := provider.OutcomeUnknown(tt.err); got != tt.want {
				t.Errorf("OutcomeUnknown(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
