package hcloudsim

import (
	"fmt"
	"slices"
	"strings"
)

// checkLabels applies Hetzner's label rules: a key is an optional DNS
// subdomain prefix and '/', then a name of 1 to 63 characters; a value is
// empty or up to 63 characters. Names and values start and end with a letter
// or digit and may contain '-', '_' and '.' in between.
func checkLabels(labels map[string]string) error {
	for k, v := range labels {
		name := k
		if prefix, rest, ok := strings.Cut(k, "/"); ok {
			if prefix == "" || len(prefix) > 253 || !validHostname(prefix) {
				return fmt.Errorf("label key %q has an invalid prefix", k)
			}
			name = rest
		}
		if name == "" || len(name) > 63 || !labelWord(name) {
			return fmt.Errorf("label key %q is invalid", k)
		}
		if v != "" && (len(v) > 63 || !labelWord(v)) {
			return fmt.Errorf("label value %q of key %q is invalid", v, k)
		}
	}
	return nil
}

func labelWord(s string) bool {
	if !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// validHostname reports whether s is a hostname as RFC 1123 allows: labels
// of 1 to 63 letters, digits and '-', not starting or ending with '-',
// separated by dots, 253 characters at most.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if part == "" || len(part) > 63 || part[0] == '-' || part[len(part)-1] == '-' {
			return false
		}
		for i := 0; i < len(part); i++ {
			if c := part[i]; !alnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

// selector is a parsed label selector: every requirement must hold.
type selector []requirement

type requirement struct {
	key    string
	op     string // "=", "!=", "exists", "!exists", "in", "notin"
	values []string
}

// parseSelector parses Hetzner's label selector syntax: comma-separated
// requirements, each one of "k=v", "k==v", "k!=v", "k", "!k",
// "k in (v1,v2)" and "k notin (v1,v2)".
func parseSelector(s string) (selector, error) {
	var sel selector
	for _, term := range splitTerms(s) {
		term = strings.TrimSpace(term)
		if term == "" {
			return nil, fmt.Errorf("empty requirement in label selector %q", s)
		}
		var req requirement
		switch {
		case strings.HasPrefix(term, "!"):
			req = requirement{key: strings.TrimSpace(term[1:]), op: "!exists"}
		case strings.Contains(term, "!="):
			k, v, _ := strings.Cut(term, "!=")
			req = requirement{key: strings.TrimSpace(k), op: "!=", values: []string{strings.TrimSpace(v)}}
		case strings.Contains(term, "=="):
			k, v, _ := strings.Cut(term, "==")
			req = requirement{key: strings.TrimSpace(k), op: "=", values: []string{strings.TrimSpace(v)}}
		case strings.Contains(term, "="):
			k, v, _ := strings.Cut(term, "=")
			req = requirement{key: strings.TrimSpace(k), op: "=", values: []string{strings.TrimSpace(v)}}
		case strings.Contains(term, "("):
			f := strings.Fields(term[:strings.Index(term, "(")])
			if len(f) != 2 || (f[1] != "in" && f[1] != "notin") || !strings.HasSuffix(term, ")") {
				return nil, fmt.Errorf("invalid requirement %q in label selector", term)
			}
			inner := term[strings.Index(term, "(")+1 : len(term)-1]
			req = requirement{key: f[0], op: f[1]}
			for v := range strings.SplitSeq(inner, ",") {
				req.values = append(req.values, strings.TrimSpace(v))
			}
		default:
			req = requirement{key: term, op: "exists"}
		}
		if req.key == "" || strings.ContainsAny(req.key, " =!(),") {
			return nil, fmt.Errorf("invalid key in requirement %q of label selector", term)
		}
		for _, v := range req.values {
			if strings.ContainsAny(v, " =!(),") {
				return nil, fmt.Errorf("invalid value in requirement %q of label selector", term)
			}
		}
		sel = append(sel, req)
	}
	return sel, nil
}

// splitTerms splits at commas outside parentheses.
func splitTerms(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// matches reports whether labels satisfy every requirement.
func (sel selector) matches(labels map[string]string) bool {
	for _, r := range sel {
		v, ok := labels[r.key]
		switch r.op {
		case "exists":
			if !ok {
				return false
			}
		case "!exists":
			if ok {
				return false
			}
		case "=":
			if !ok || v != r.values[0] {
				return false
			}
		case "!=":
			if ok && v == r.values[0] {
				return false
			}
		case "in":
			if !ok || !slices.Contains(r.values, v) {
				return false
			}
		case "notin":
			if ok && slices.Contains(r.values, v) {
				return false
			}
		}
	}
	return true
}
