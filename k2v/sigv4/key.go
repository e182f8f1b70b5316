package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"slices"
	"strings"
	"sync"
)

// deriveKey computes the SigV4 signing key:
//
//	HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")
//
// It runs once per (secret, day, region, service) thanks to keyCache, so it
// uses crypto/hmac plainly.
func deriveKey(secret, date, region, service string) [32]byte {
	k := []byte("AWS4" + secret)
	for _, s := range [...]string{date, region, service, scopeTerminator} {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(s))
		k = m.Sum(nil)
	}
	return [32]byte(k)
}

// keyCacheSize bounds keyCache: when it is full it starts over empty. A
// signing key is valid for one day, so a cluster with fewer than ~1000
// active keys (per region alias) hits the cache after each key's first
// request of the day.
const keyCacheSize = 1024

// keyCache remembers derived signing keys. The map key holds the secret
// itself, so a rotated secret can never be served a key derived from the old
// one; the cache lives in the same process that holds the key table anyway.
type keyCache struct {
	mu struct {
		sync.Mutex
		keys map[keyCacheKey][32]byte
	}
}

type keyCacheKey struct{ secret, date, region, service string }

// get returns the signing key for (secret, date, region, service), deriving
// and caching it if needed. region and service must be the Verifier's own
// strings; secret and date are copied before being cached, so that the cache
// does not pin the caller's buffers.
func (c *keyCache) get(secret, date, region, service string) [32]byte {
	k := keyCacheKey{secret, date, region, service}
	c.mu.Lock()
	key, ok := c.mu.keys[k]
	c.mu.Unlock()
	if ok {
		return key
	}
	key = deriveKey(secret, date, region, service)
	k.secret, k.date = strings.Clone(secret), strings.Clone(date)
	c.mu.Lock()
	if c.mu.keys == nil || len(c.mu.keys) >= keyCacheSize {
		c.mu.keys = make(map[keyCacheKey][32]byte)
	}
	c.mu.keys[k] = key
	c.mu.Unlock()
	return key
}

// hmacBuf is the reusable buffer of hmacSHA256.
type hmacBuf struct{ b []byte }

// hmacSHA256 returns HMAC-SHA256(key, msg) (RFC 2104) for a 32-byte key.
// It gives the same result as crypto/hmac (see TestHMAC) but, working on one
// contiguous buffer with sha256.Sum256, it does not allocate once buf has
// grown: it runs once per request and once per aws-chunked chunk.
func hmacSHA256(buf *hmacBuf, key *[32]byte, msg []byte) [32]byte {
	const (
		block = sha256.BlockSize
		ipad  = 0x36
		opad  = 0x5c
	)
	b := slices.Grow(buf.b[:0], block+len(msg))[:block]
	for i := range block {
		b[i] = ipad
		if i < len(key) {
			b[i] ^= key[i]
		}
	}
	b = append(b, msg...)
	inner := sha256.Sum256(b)
	buf.b = b[:0]

	var outer [block + sha256.Size]byte
	for i := range block {
		outer[i] = opad
		if i < len(key) {
			outer[i] ^= key[i]
		}
	}
	copy(outer[block:], inner[:])
	return sha256.Sum256(outer[:])
}
