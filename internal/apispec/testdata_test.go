package apispec

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDescriptionsNeedNothingBesideTheRepository loads both descriptions
// from a working directory that has nothing around it (as in a user's
// clone, where no shared folder lies beside the repository) and shows that
// each loaded description still rejects a wrong response: a spec-validation
// test that cannot fail checks nothing.
func TestDescriptionsNeedNothingBesideTheRepository(t *testing.T) {
	t.Setenv(EnvDir, "")
	t.Chdir(t.TempDir())
	json := http.Header{"Content-Type": []string{"application/json"}}
	for _, tc := range []struct {
		name string
		spec func(testing.TB) *Spec
		url  string
		good string
		bad  string
	}{
		{"digitalocean", DigitalOcean, "https://api.digitalocean.com/v2/account/keys/1",
			`{"ssh_key":{"id":1,"fingerprint":"3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa","public_key":"ssh-ed25519 AAAA x","name":"k"}}`,
			`{"ssh_key":{"id":"1","fingerprint":"3b:16","public_key":"ssh-ed25519 AAAA x","name":"k"}}`},
		{"hetzner", Hetzner, "https://api.hetzner.cloud/v1/ssh_keys/1",
			`{"ssh_key":{"id":1,"name":"k","fingerprint":"b7:2f:30:a0:2f:6c:58:6c:21:04:58:61:ba:06:3b:2f","public_key":"ssh-ed25519 AAAA x","labels":{},"created":"2016-01-30T23:50:00+00:00"}}`,
			`{"ssh_key":{"id":"1","name":"k","fingerprint":"b7:2f","public_key":"ssh-ed25519 AAAA x","labels":{},"created":"2016-01-30T23:50:00+00:00"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec(t)
			if s.Operations() < 100 {
				t.Fatalf("the %s description has %d operations", tc.name, s.Operations())
			}
			req := httptest.NewRequest(http.MethodGet, tc.url, nil)
			req.Header.Set("Authorization", "Bearer test")
			if _, err := s.Check(Exchange{Request: req, Status: 200, Header: json, Body: []byte(tc.good)}); err != nil {
				t.Errorf("a conforming response is rejected: %v", err)
			}
			_, err := s.Check(Exchange{Request: req, Status: 200, Header: json, Body: []byte(tc.bad)})
			if err == nil || !strings.Contains(err.Error(), "response") {
				t.Errorf("an SSH key whose id is a string passes: %v", err)
			}
		})
	}
}
