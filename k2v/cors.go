package k2v

import "strings"

// CORSMatch finds the first rule of rules that allows a request from origin
// with method and the given request headers (S3 semantics: origins and
// headers may contain one '*' wildcard; header names compare without case).
// It returns nil when no rule matches.
func CORSMatch(rules []CORSRule, origin, method string, headers []string) *CORSRule {
	for i := range rules {
		r := &rules[i]
		if !anyMatch(r.AllowedOrigins, origin, false) {
			continue
		}
		methodOK := false
		for _, m := range r.AllowedMethods {
			if m == method || m == "*" {
				methodOK = true
				break
			}
		}
		if !methodOK {
			continue
		}
		headersOK := true
		for _, h := range headers {
			if !anyMatch(r.AllowedHeaders, h, true) {
				headersOK = false
				break
			}
		}
		if headersOK {
			return r
		}
	}
	return nil
}

func anyMatch(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if wildcardMatch(p, s, fold) {
			return true
		}
	}
	return false
}

// wildcardMatch matches s against a pattern with at most one '*'.
func wildcardMatch(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	before, after, found := strings.Cut(pattern, "*")
	if !found {
		return pattern == s
	}
	return len(s) >= len(before)+len(after) && strings.HasPrefix(s, before) && strings.HasSuffix(s, after)
}
