package hcloudsim

import "testing"

func TestLabelSelector(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"managed-by": "spuff", "env": "prod", "tier": ""}
	for _, tc := range []struct {
		sel  string
		want bool
	}{
		{"managed-by=spuff", true},
		{"managed-by==spuff", true},
		{"managed-by==other", false},
		{"managed-by!=other", true},
		{"env", true},
		{"!env", false},
		{"!missing", true},
		{"env in (prod,staging)", true},
		{"env notin (prod,staging)", false},
		{"managed-by=spuff,env in (dev, staging)", false},
		{"managed-by=spuff, env=prod, tier", true},
		{"tier=", true},
	} {
		sel, err := parseSelector(tc.sel)
		if err != nil {
			t.Errorf("parseSelector(%q): %v", tc.sel, err)
			continue
		}
		if got := sel.matches(labels); got != tc.want {
			t.Errorf("%q matches %v = %v, want %v", tc.sel, labels, got, tc.want)
		}
	}
	for _, bad := range []string{"", "a=b,", "=x", "env in prod", "a b=c", "k==v w"} {
		if _, err := parseSelector(bad); err == nil {
			t.Errorf("parseSelector(%q) accepted a malformed selector", bad)
		}
	}
}

func TestCheckLabels(t *testing.T) {
	t.Parallel()
	for _, ok := range []map[string]string{
		{"managed-by": "spuff"}, {"a": ""}, {"example.com/role": "web"}, {"a.b_c-d": "x.y_z-1"},
	} {
		if err := checkLabels(ok); err != nil {
			t.Errorf("checkLabels(%v): %v", ok, err)
		}
	}
	for _, bad := range []map[string]string{
		{"managed-by:spuff": ""}, {"": "x"}, {"-a": "x"}, {"a": "-x"}, {"a": "x y"}, {"/a": "x"},
	} {
		if err := checkLabels(bad); err == nil {
			t.Errorf("checkLabels(%v) accepted invalid labels", bad)
		}
	}
}
