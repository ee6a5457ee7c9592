package aws_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spuffgo/spuff/provider"
	"github.com/spuffgo/spuff/provider/aws"
	"github.com/spuffgo/spuff/providertest"
	"github.com/spuffgo/spuff/providertest/ec2sim"
)

// TestExpiryEndsTheMachineItself: a machine with a TTL is launched with
// the shutdown behaviour "terminate" and a boot script that powers it off
// at its expiry, beside the caller's own cloud-init; the simulated guest
// runs it, and EC2 terminates the machine at its expiry with no client
// or reaper left.
func TestExpiryEndsTheMachineItself(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Now()}
	opts := providertest.Options()
	opts.Now = clock.now
	srv := ec2sim.Start(t, opts)
	p, err := aws.Open(context.Background(), fastConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, userData := range []string{"", "#cloud-config\npackages: [jq]\n", "#!/bin/sh\necho hi\n"} {
		req := request(fmt.Sprintf("expiring-%d", len(userData)))
		req.UserData, req.TTL = userData, time.Hour
		inst, err := p.CreateInstance(ctx, req)
		if err != nil {
			t.Fatalf("user data %q: %v", userData, err)
		}
		m := model(t, srv, inst.ID)
		if !strings.Contains(m.UserData, "systemd-run --on-calendar=@") || !strings.Contains(m.UserData, userData) {
			t.Errorf("user data %q: the machine got %q, want the caller's and the expiry script", userData, m.UserData)
		}
		if userData != "" && !strings.Contains(m.UserData, "multipart/mixed") {
			t.Errorf("user data %q: not merged as MIME multipart: %q", userData, m.UserData)
		}
		if inst.ExpiresAt.IsZero() {
			t.Errorf("the instance carries no expiry")
		}
	}
	if n := len(srv.Cloud.LiveInstances()); n != 3 {
		t.Fatalf("%d live instances, want 3", n)
	}
	clock.advance(time.Hour + time.Minute)
	if n := len(srv.Cloud.LiveInstances()); n != 0 {
		t.Errorf("%d instances live past their expiry, want 0: the guests powered off and EC2 terminated them", n)
	}

	// The expiry script counts toward EC2's 16 KB.
	req := request("too-much")
	req.TTL, req.UserData = time.Hour, "#!/bin/sh\n"+strings.Repeat("#", aws.MaxUserDataBytes-20)
	before := srv.Cloud.TotalCalls()
	_, err = p.CreateInstance(ctx, req)
	var perr *provider.Error
	if !errorsAs(err, &perr) || perr.Kind != provider.KindInvalidConfig || perr.Field != "UserData" {
		t.Errorf("user data at the limit with a TTL: %v, want invalid config naming UserData", err)
	}
	if n := srv.Cloud.TotalCalls() - before; n != 0 {
		t.Errorf("it made %d calls, want 0", n)
	}
}

// fakeClock is a simulated cloud's clock that a test moves on.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
