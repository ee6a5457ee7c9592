package provider

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestWaitTraceReportsEveryPoll(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		events []WaitEvent
	)
	ctx := WithWaitTrace(context.Background(), &WaitTrace{Polled: func(e WaitEvent) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	w := waiter{Provider: "toy", Op: "WaitReady", ID: "7", Policy: FixedWait(time.Millisecond)}
	n := 0
	states := []string{"new", "new", "active without public IP", "active"}
	err := w.Wait(ctx, func(context.Context) (bool, string, error) {
		n++
		return n == len(states), states[n-1], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != len(states) {
		t.Fatalf("%d events, want %d", len(events), len(states))
	}
	for i, e := range events {
		if e.State != states[i] || e.Polls != i+1 || e.ID != "7" || e.Op != "WaitReady" || e.Provider != "toy" {
			t.Errorf("event %d = %+v", i, e)
		}
		if e.Done != (i == len(states)-1) {
			t.Errorf("event %d Done = %v", i, e.Done)
		}
	}
	if ContextWaitTrace(context.Background()) != nil {
		t.Error("a bare context has a trace")
	}
}
