package k2v

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
)

// Bucket is the bucket table's entry. Buckets live in a full-copy table:
// every node holds all of them. A deleted bucket keeps only its ID and the
// deletion mark, which wins every merge.
type Bucket struct {
	ID        BucketID
	Deleted   bool
	CreatedMs uint64
	// Aliases are the global names of the bucket (true = assigned). The
	// alias table is authoritative for resolution; this is the reverse view.
	Aliases map[string]LWW[bool]
	// LocalAliases are names visible to one access key only, keyed by
	// access key ID + "/" + alias.
	LocalAliases map[string]LWW[bool]
	// Keys are the permissions granted to access keys.
	Keys map[string]LWW[Perm]
	// CORS holds the bucket's CORS rules (nil: none).
	CORS LWW[[]CORSRule]
}

// CORSRule is one rule of a bucket's CORS configuration, as in S3.
type CORSRule struct {
	ID             string
	AllowedOrigins []string
	AllowedMethods []string
	AllowedHeaders []string
	ExposeHeaders  []string
	// MaxAgeSeconds is -1 when absent.
	MaxAgeSeconds int64
}

// GlobalAliases returns the bucket's assigned global aliases, sorted.
func (b *Bucket) GlobalAliases() []string {
	var out []string
	for _, name := range sortedKeys(b.Aliases) {
		if b.Aliases[name].Value {
			out = append(out, name)
		}
	}
	return out
}

// KeyPerm returns the permissions of an access key on the bucket.
func (b *Bucket) KeyPerm(keyID string) Perm { return b.Keys[keyID].Value }

func (b *Bucket) merge(o *Bucket) {
	if b.Deleted || o.Deleted {
		*b = Bucket{ID: b.ID, Deleted: true}
		return
	}
	b.CreatedMs = min(nonZero(b.CreatedMs, o.CreatedMs), nonZero(o.CreatedMs, b.CreatedMs))
	mergeLWWMap(&b.Aliases, o.Aliases, compareBool)
	mergeLWWMap(&b.LocalAliases, o.LocalAliases, compareBool)
	mergeLWWMap(&b.Keys, o.Keys, comparePerm)
	b.CORS = mergeLWW(b.CORS, o.CORS, compareCORS)
}

func nonZero(a, b uint64) uint64 {
	if a == 0 {
		return b
	}
	return a
}

func compareCORS(a, b []CORSRule) int {
	return bytes.Compare(appendCORS(nil, a), appendCORS(nil, b))
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ss)))
	for _, s := range ss {
		dst = appendString(dst, s)
	}
	return dst
}

func (r *reader) strings() []string {
	n := r.count(1)
	var out []string
	for range n {
		out = append(out, r.string())
	}
	return out
}

func appendCORS(dst []byte, rules []CORSRule) []byte {
	if rules == nil {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.AppendUvarint(dst, uint64(len(rules)))
	for _, r := range rules {
		dst = appendString(dst, r.ID)
		dst = appendStrings(dst, r.AllowedOrigins)
		dst = appendStrings(dst, r.AllowedMethods)
		dst = appendStrings(dst, r.AllowedHeaders)
		dst = appendStrings(dst, r.ExposeHeaders)
		dst = binary.AppendVarint(dst, r.MaxAgeSeconds)
	}
	return dst
}

func (r *reader) cors() []CORSRule {
	if !r.bool() {
		return nil
	}
	n := r.count(6)
	rules := make([]CORSRule, 0, n)
	for range n {
		rules = append(rules, CORSRule{
			ID: r.string(), AllowedOrigins: r.strings(), AllowedMethods: r.strings(),
			AllowedHeaders: r.strings(), ExposeHeaders: r.strings(), MaxAgeSeconds: r.varint(),
		})
	}
	return rules
}

func appendBoolMap(dst []byte, m map[string]LWW[bool]) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	for _, k := range sortedKeys(m) {
		dst = appendString(dst, k)
		dst = binary.AppendUvarint(dst, m[k].Time)
		dst = appendBool(dst, m[k].Value)
	}
	return dst
}

func (r *reader) boolMap() map[string]LWW[bool] {
	n := r.count(3)
	if n == 0 {
		return nil
	}
	m := make(map[string]LWW[bool], n)
	for range n {
		k := r.string()
		m[k] = LWW[bool]{Time: r.uvarint(), Value: r.bool()}
	}
	return m
}

func appendPermMap(dst []byte, m map[string]LWW[Perm]) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	for _, k := range sortedKeys(m) {
		dst = appendString(dst, k)
		dst = binary.AppendUvarint(dst, m[k].Time)
		dst = append(dst, byte(m[k].Value.bits()))
	}
	return dst
}

func (r *reader) permMap() map[string]LWW[Perm] {
	n := r.count(3)
	if n == 0 {
		return nil
	}
	m := make(map[string]LWW[Perm], n)
	for range n {
		k := r.string()
		m[k] = LWW[Perm]{Time: r.uvarint(), Value: permFromBits(r.byte())}
	}
	return m
}

// bucketFormat is the first byte of a stored bucket. Frozen: id, deleted,
// then (live buckets) created, aliases, local aliases, keys, CORS.
const bucketFormat = 1

type bucketSchema struct{}

func (bucketSchema) Name() string { return "bucket" }
func (bucketSchema) Keys(b *Bucket) (partition, sort []byte) {
	return nil, b.ID[:]
}

func (bucketSchema) Encode(dst []byte, b *Bucket) []byte {
	dst = append(dst, bucketFormat)
	dst = append(dst, b.ID[:]...)
	dst = appendBool(dst, b.Deleted)
	if b.Deleted {
		return dst
	}
	dst = binary.AppendUvarint(dst, b.CreatedMs)
	dst = appendBoolMap(dst, b.Aliases)
	dst = appendBoolMap(dst, b.LocalAliases)
	dst = appendPermMap(dst, b.Keys)
	dst = binary.AppendUvarint(dst, b.CORS.Time)
	return appendCORS(dst, b.CORS.Value)
}

func (bucketSchema) Decode(data []byte) (*Bucket, error) {
	r := &reader{b: data}
	r.version(bucketFormat, "bucket")
	b := &Bucket{}
	copy(b.ID[:], r.fixed(32))
	if b.Deleted = r.bool(); !b.Deleted {
		b.CreatedMs = r.uvarint()
		b.Aliases = r.boolMap()
		b.LocalAliases = r.boolMap()
		b.Keys = r.permMap()
		b.CORS.Time = r.uvarint()
		b.CORS.Value = r.cors()
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return b, nil
}

func (bucketSchema) Merge(dst, src *Bucket)                 { dst.merge(src) }
func (bucketSchema) IsTombstone(b *Bucket) bool             { return b.Deleted }
func (bucketSchema) Updated(*Batch, *Bucket, *Bucket) error { return nil }

// Alias is the alias table's entry: a global bucket name and the bucket it
// designates (zero: none, the name is free).
type Alias struct {
	Name   string
	Bucket LWW[BucketID]
}

const aliasFormat = 1

type aliasSchema struct{}

func (aliasSchema) Name() string                           { return "bucket_alias" }
func (aliasSchema) Keys(a *Alias) (partition, sort []byte) { return nil, []byte(a.Name) }
func (aliasSchema) Encode(dst []byte, a *Alias) []byte {
	dst = append(dst, aliasFormat)
	dst = appendString(dst, a.Name)
	dst = binary.AppendUvarint(dst, a.Bucket.Time)
	return append(dst, a.Bucket.Value[:]...)
}

func (aliasSchema) Decode(data []byte) (*Alias, error) {
	r := &reader{b: data}
	r.version(aliasFormat, "alias")
	a := &Alias{Name: r.string()}
	a.Bucket.Time = r.uvarint()
	copy(a.Bucket.Value[:], r.fixed(32))
	if err := r.done(); err != nil {
		return nil, err
	}
	return a, nil
}

func (aliasSchema) Merge(dst, src *Alias) {
	dst.Bucket = mergeLWW(dst.Bucket, src.Bucket, compareBucketID)
}
func (aliasSchema) IsTombstone(a *Alias) bool            { return a.Bucket.Value.IsZero() }
func (aliasSchema) Updated(*Batch, *Alias, *Alias) error { return nil }

// ValidBucketName reports whether name may be a global bucket alias: the
// S3 bucket naming rules (3 to 63 characters of lowercase letters, digits,
// '-' and '.', starting and ending with a letter or digit, not shaped like
// an IPv4 address) that keep names usable in virtual-hosted-style URLs.
func ValidBucketName(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	isAlnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	if !isAlnum(name[0]) || !isAlnum(name[len(name)-1]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isAlnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	if strings.Contains(name, "..") || strings.HasPrefix(name, "xn--") {
		return false
	}
	parts := strings.Split(name, ".")
	if len(parts) == 4 && !slices.ContainsFunc(parts, func(p string) bool {
		return p == "" || strings.Trim(p, "0123456789") != ""
	}) {
		return false // looks like an IP address
	}
	return true
}
