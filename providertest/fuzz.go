package providertest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spuffgo/spuff/provider"
)

// noNetwork is a transport that counts the requests made through it and
// fails them all: a fuzz test needs no network.
type noNetwork struct{ n atomic.Int64 }

func (nn *noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	nn.n.Add(1)
	return nil, errors.New("no network in this test")
}

// FuzzCreateInstance is the body of a driver's fuzz test of CreateInstance,
// with no network. The driver's test adds its seeds (name, region, size,
// image spec, user data, label key, label value, SSH key; eight strings)
// and calls it with a function that opens the driver from a Config:
//
//	func FuzzCreateInstance(f *testing.F) {
//		f.Add("dev-1", "fsn1", "cx22", "ubuntu:24.04", "", "env", "dev", "123")
//		providertest.FuzzCreateInstance(f, func(cfg provider.Config) (provider.Provider, error) {
//			return hetzner.Open(context.Background(), cfg)
//		})
//	}
//
// CreateInstance must never panic nor succeed; a request refused before
// any call is refused with an invalid-config error naming a field; a
// request that fails Validate makes no call; the error never quotes the
// user data.
func FuzzCreateInstance(f *testing.F, open func(provider.Config) (provider.Provider, error)) {
	f.Helper()
	nn := &noNetwork{}
	p, err := open(provider.Config{
		Token: "fuzz", AccessKeyID: "AKIAFUZZFUZZFUZZFUZZ", SecretAccessKey: "fuzz", Region: "us-east-1",
		Endpoint: "http://no-network.invalid", HTTPClient: &http.Client{Transport: nn},
		Retry: provider.RetryPolicy{MaxAttempts: 1}, Pacer: provider.NewPacer(),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, region, size, image, userData, labelKey, labelValue, sshKey string) {
		spec, _ := provider.ParseImageSpec(image)
		req := provider.InstanceRequest{
			Name: name, Region: region, Size: size, Image: spec, UserData: userData,
			Labels: map[string]string{labelKey: labelValue}, SSHKeys: []string{sshKey},
		}
		before := nn.n.Load()
		inst, err := p.CreateInstance(context.Background(), req)
		calls := nn.n.Load() - before
		if inst != nil || err == nil {
			t.Fatalf("CreateInstance with no network returned %v, %v", inst, err)
		}
		var perr *provider.Error
		if !errors.As(err, &perr) {
			t.Fatalf("CreateInstance error %T %v is not a *provider.Error", err, err)
		}
		if calls == 0 && (perr.Kind != provider.KindInvalidConfig || perr.Field == "") {
			t.Fatalf("refused before any call with %v (kind %s, field %q), want invalid config naming a field", err, perr.Kind, perr.Field)
		}
		if calls > 0 && req.Validate() != nil {
			t.Fatalf("a request that fails Validate (%v) made %d calls", req.Validate(), calls)
		}
		if len(userData) > 8 && strings.Contains(err.Error(), userData) {
			t.Fatalf("the error quotes the user data: %v", err)
		}
	})
}
