package provider_test

import (
	"net/netip"
	"testing"

	"github.com/spuffgo/spuff/provider"
)

func TestStatusString(t *testing.T) {
	t.Parallel()
	tests := map[provider.Status]string{
		provider.StatusUnknown: "unknown",
		provider.StatusNew:     "new",
		provider.StatusActive:  "active",
		provider.StatusOff:     "off",
		provider.StatusArchive: "archive",
		provider.Status(-1):    "unknown",
		provider.Status(99):    "unknown",
	}
	for s, want := range tests {
		if got := s.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

func TestInstanceReadyAndIP(t *testing.T) {
	t.Parallel()
	v4 := netip.MustParseAddr("203.0.113.7")
	v6 := netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		name  string
		inst  *provider.Instance
		ready bool
		ip    netip.Addr
	}{
		{"nil", nil, false, netip.Addr{}},
		{"booting", &provider.Instance{Status: provider.StatusNew, PublicIPv4: v4}, false, v4},
		{"active without ip", &provider.Instance{Status: provider.StatusActive}, false, netip.Addr{}},
		{"active with v4", &provider.Instance{Status: provider.StatusActive, PublicIPv4: v4}, true, v4},
		{"active with v6 only", &provider.Instance{Status: provider.StatusActive, PublicIPv6: v6}, true, v6},
		{"both prefer v4", &provider.Instance{Status: provider.StatusActive, PublicIPv4: v4, PublicIPv6: v6}, true, v4},
		{"off", &provider.Instance{Status: provider.StatusOff, PublicIPv4: v4}, false, v4},
	}
	for _, tt := range tests {
		if got := tt.inst.Ready(); got != tt.ready {
			t.Errorf("%s: Ready = %v, want %v", tt.name, got, tt.ready)
		}
		if tt.inst == nil {
			continue
		}
		if got := tt.inst.IP(); got != tt.ip {
			t.Errorf("%s: IP = %v, want %v", tt.name, got, tt.ip)
		}
	}
}

func TestInstanceClone(t *testing.T) {
	t.Parallel()
	var nilInst *provider.Instance
	if nilInst.Clone() != nil {
		t.Error("nil.Clone() != nil")
	}
	orig := &provider.Instance{ID: "1", Name: "a", Labels: map[string]string{"env": "dev"}}
	c := orig.Clone()
	c.Labels["env"] = "prod"
	c.Name = "b"
	if orig.Labels["env"] != "dev" || orig.Name != "a" {
		t.Errorf("Clone shares state with the original: %+v", orig)
	}
}
