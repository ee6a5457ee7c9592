package ec2sim

import "testing"

func TestGlob(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"ubuntu/images/hvm-ssd*/ubuntu-*-24.04-amd64-server-*", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250301", true},
		{"ubuntu/images/hvm-ssd*/ubuntu-*-24.04-amd64-server-*", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20250110", false},
		{"debian-12-*", "debian-12-backports-amd64-20250210-2019", true},
		{"debian-12-amd64-*", "debian-12-backports-amd64-20250210-2019", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*", "", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	} {
		if got := glob(c.pattern, c.s); got != c.want {
			t.Errorf("glob(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}
