package k2vhttp

import (
	"errors"
	"strconv"
	"strings"

	"github.com/grangeio/grange/k2v"
)

// preflight answers an OPTIONS request before any authentication
// (k2v-api.md §3.6).
func (c *call) preflight() error {
	id, err := c.s.cfg.Catalog.LookupAlias(c.req.Bucket)
	var bk *k2v.Bucket
	if err == nil {
		bk, err = c.s.cfg.Catalog.Bucket(id)
	}
	if errors.Is(err, k2v.ErrNoSuchBucket) {
		// unknown or key-local name: nothing to evaluate
		h := &c.rc.Response.Header
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "*")
		c.rc.SetStatusCode(200)
		return nil
	}
	if err != nil {
		return err
	}
	origin := string(c.rc.Request.Header.Peek("Origin"))
	if origin == "" {
		return badRequest("Error handling OPTIONS: missing Origin header")
	}
	method := string(c.rc.Request.Header.Peek("Access-Control-Request-Method"))
	if method == "" {
		return badRequest("Error handling OPTIONS: missing Access-Control-Request-Method header")
	}
	var headers []string
	for h := range strings.SplitSeq(string(c.rc.Request.Header.Peek("Access-Control-Request-Headers")), ",") {
		if h = strings.TrimSpace(h); h != "" {
			headers = append(headers, h)
		}
	}
	rule := k2v.CORSMatch(bk.CORS.Value, origin, method, headers)
	if rule == nil {
		return badRequest("Error handling OPTIONS: this CORS request is not allowed")
	}
	c.setCORSHeaders(rule, origin, headers)
	c.rc.SetStatusCode(200)
	return nil
}

// addCORSHeaders adds the CORS headers of the matching rule of the bucket
// to the response of a GET or POST that carries an Origin header.
func (c *call) addCORSHeaders() {
	method := string(c.rc.Method())
	if method != "GET" && method != "POST" {
		return
	}
	origin := string(c.rc.Request.Header.Peek("Origin"))
	if origin == "" || len(c.bucket.CORS.Value) == 0 {
		return
	}
	if rule := k2v.CORSMatch(c.bucket.CORS.Value, origin, method, nil); rule != nil {
		c.setCORSHeaders(rule, origin, nil)
	}
}

func (c *call) setCORSHeaders(rule *k2v.CORSRule, origin string, requested []string) {
	h := &c.rc.Response.Header
	allowOrigin := origin
	for _, o := range rule.AllowedOrigins {
		if o == "*" {
			allowOrigin = "*"
		}
	}
	h.Set("Access-Control-Allow-Origin", allowOrigin)
	if allowOrigin != "*" {
		h.Add("Vary", "Origin")
	}
	h.Set("Access-Control-Allow-Methods", strings.Join(rule.AllowedMethods, ", "))
	if len(requested) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(requested, ", "))
	} else if len(rule.AllowedHeaders) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(rule.AllowedHeaders, ", "))
	}
	if len(rule.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(rule.ExposeHeaders, ", "))
	}
	if rule.MaxAgeSeconds >= 0 {
		h.Set("Access-Control-Max-Age", strconv.FormatInt(rule.MaxAgeSeconds, 10))
	}
}
