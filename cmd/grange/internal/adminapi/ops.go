package adminapi

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/grangeio/grange/k2v"
)

func (s *Server) listKeys(*fasthttp.RequestCtx) (any, error) {
	keys, err := s.cfg.Catalog.ListKeys()
	if err != nil {
		return nil, err
	}
	out := make([]ListKeysResponseItem, len(keys))
	for i, k := range keys {
		out[i] = ListKeysResponseItem{ID: k.ID, Name: k.Name.Value}
	}
	return out, nil
}

// keyInfo builds the description of a key; the secret only when asked.
func (s *Server) keyInfo(k *k2v.Key, showSecret bool) (*GetKeyInfoResponse, error) {
	info := &GetKeyInfoResponse{
		Name:        k.Name.Value,
		AccessKeyID: k.ID,
		Permissions: KeyPerm{CreateBucket: k.AllowCreateBucket.Value},
		Buckets:     []KeyInfoBucketResponse{},
	}
	if showSecret {
		secret := k.Secret
		info.SecretAccessKey = &secret
	}
	ids := map[k2v.BucketID]bool{}
	for id, p := range k.Buckets {
		if p.Value != (k2v.Perm{}) {
			ids[id] = true
		}
	}
	for _, l := range k.LocalAliases {
		if !l.Value.IsZero() {
			ids[l.Value] = true
		}
	}
	for id := range ids {
		bk, err := s.cfg.Catalog.Bucket(id)
		if err != nil {
			continue // deleted meanwhile
		}
		b := KeyInfoBucketResponse{ID: id.String(), GlobalAliases: nonNil(bk.GlobalAliases()), LocalAliases: []string{}, Permissions: apiPerm(k.Perm(id))}
		for name, l := range k.LocalAliases {
			if l.Value == id {
				b.LocalAliases = append(b.LocalAliases, name)
			}
		}
		slices.Sort(b.LocalAliases)
		info.Buckets = append(info.Buckets, b)
	}
	slices.SortFunc(info.Buckets, func(a, b KeyInfoBucketResponse) int { return strings.Compare(a.ID, b.ID) })
	return info, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func apiPerm(p k2v.Perm) BucketKeyPerm {
	return BucketKeyPerm{Read: p.Read, Write: p.Write, Owner: p.Owner}
}

func (s *Server) findKey(rc *fasthttp.RequestCtx) (*k2v.Key, error) {
	args := rc.QueryArgs()
	switch {
	case args.Has("id"):
		return s.cfg.Catalog.Key(string(args.Peek("id")))
	case args.Has("search"):
		return s.cfg.Catalog.FindKey(string(args.Peek("search")))
	}
	return nil, badRequest("one of the query parameters id or search is required")
}

func (s *Server) getKeyInfo(rc *fasthttp.RequestCtx) (any, error) {
	k, err := s.findKey(rc)
	if err != nil {
		return nil, err
	}
	return s.keyInfo(k, string(rc.QueryArgs().Peek("showSecretKey")) == "true")
}

func (s *Server) createKey(rc *fasthttp.RequestCtx) (any, error) {
	var req CreateKeyRequest
	if len(rc.PostBody()) > 0 {
		if err := decode(rc, &req); err != nil {
			return nil, err
		}
	}
	name := ""
	if req.Name != nil {
		name = *req.Name
	}
	k, err := s.cfg.Catalog.CreateKey(name)
	if err != nil {
		return nil, err
	}
	return s.keyInfo(k, true)
}

func (s *Server) importKey(rc *fasthttp.RequestCtx) (any, error) {
	var req ImportKeyRequest
	if err := decode(rc, &req); err != nil {
		return nil, err
	}
	name := ""
	if req.Name != nil {
		name = *req.Name
	}
	k, err := s.cfg.Catalog.ImportKey(req.AccessKeyID, req.SecretAccessKey, name)
	if err != nil {
		return nil, err
	}
	return s.keyInfo(k, false)
}

func (s *Server) updateKey(rc *fasthttp.RequestCtx) (any, error) {
	id := string(rc.QueryArgs().Peek("id"))
	if id == "" {
		return nil, badRequest("query parameter id is required")
	}
	var req UpdateKeyRequestBody
	if err := decode(rc, &req); err != nil {
		return nil, err
	}
	u := k2v.KeyUpdate{Name: req.Name}
	switch {
	case req.Allow != nil && req.Allow.CreateBucket:
		v := true
		u.AllowCreateBucket = &v
	case req.Deny != nil && req.Deny.CreateBucket:
		v := false
		u.AllowCreateBucket = &v
	}
	k, err := s.cfg.Catalog.UpdateKey(id, u)
	if err != nil {
		return nil, err
	}
	return s.keyInfo(k, false)
}

func (s *Server) deleteKey(rc *fasthttp.RequestCtx) (any, error) {
	id := string(rc.QueryArgs().Peek("id"))
	if id == "" {
		return nil, badRequest("query parameter id is required")
	}
	return nil, s.cfg.Catalog.DeleteKey(id)
}

func (s *Server) listBuckets(*fasthttp.RequestCtx) (any, error) {
	buckets, err := s.cfg.Catalog.ListBuckets()
	if err != nil {
		return nil, err
	}
	out := make([]ListBucketsResponseItem, len(buckets))
	for i, bk := range buckets {
		out[i] = ListBucketsResponseItem{ID: bk.ID.String(), GlobalAliases: nonNil(bk.GlobalAliases()), LocalAliases: localAliases(bk)}
	}
	return out, nil
}

func localAliases(bk *k2v.Bucket) []BucketLocalAlias {
	out := []BucketLocalAlias{}
	for name, l := range bk.LocalAliases {
		if l.Value {
			keyID, alias, _ := strings.Cut(name, "/")
			out = append(out, BucketLocalAlias{AccessKeyID: keyID, Alias: alias})
		}
	}
	slices.SortFunc(out, func(a, b BucketLocalAlias) int {
		return strings.Compare(a.AccessKeyID+"/"+a.Alias, b.AccessKeyID+"/"+b.Alias)
	})
	return out
}

func (s *Server) bucketInfo(bk *k2v.Bucket) (*GetBucketInfoResponse, error) {
	info := &GetBucketInfoResponse{
		ID:            bk.ID.String(),
		GlobalAliases: nonNil(bk.GlobalAliases()),
		Keys:          []GetBucketInfoKey{},
	}
	if bk.CreatedMs > 0 {
		info.Created = time.UnixMilli(int64(bk.CreatedMs)).UTC().Format(time.RFC3339)
	}
	locals := localAliases(bk)
	for _, keyID := range sortedKeyIDs(bk) {
		k, err := s.cfg.Catalog.Key(keyID)
		if err != nil {
			continue // deleted key
		}
		p := bk.KeyPerm(keyID)
		entry := GetBucketInfoKey{AccessKeyID: keyID, Name: k.Name.Value, Permissions: apiPerm(p), BucketLocalAliases: []string{}}
		for _, l := range locals {
			if l.AccessKeyID == keyID {
				entry.BucketLocalAliases = append(entry.BucketLocalAliases, l.Alias)
			}
		}
		if p == (k2v.Perm{}) && len(entry.BucketLocalAliases) == 0 {
			continue
		}
		info.Keys = append(info.Keys, entry)
	}
	return info, nil
}

func sortedKeyIDs(bk *k2v.Bucket) []string {
	ids := map[string]bool{}
	for id := range bk.Keys {
		ids[id] = true
	}
	for name, l := range bk.LocalAliases {
		if l.Value {
			id, _, _ := strings.Cut(name, "/")
			ids[id] = true
		}
	}
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func (s *Server) getBucketInfo(rc *fasthttp.RequestCtx) (any, error) {
	args := rc.QueryArgs()
	var bk *k2v.Bucket
	var err error
	switch {
	case args.Has("id"):
		var id k2v.BucketID
		if id, err = k2v.ParseBucketID(string(args.Peek("id"))); err != nil {
			return nil, badRequest("%v", err)
		}
		bk, err = s.cfg.Catalog.Bucket(id)
	case args.Has("globalAlias"):
		var id k2v.BucketID
		if id, err = s.cfg.Catalog.LookupAlias(string(args.Peek("globalAlias"))); err == nil {
			bk, err = s.cfg.Catalog.Bucket(id)
		}
	case args.Has("search"):
		bk, err = s.cfg.Catalog.FindBucket(string(args.Peek("search")))
	default:
		return nil, badRequest("one of the query parameters id, globalAlias or search is required")
	}
	if err != nil {
		return nil, err
	}
	return s.bucketInfo(bk)
}

func (s *Server) createBucket(rc *fasthttp.RequestCtx) (any, error) {
	var req CreateBucketRequest
	if err := decode(rc, &req); err != nil {
		return nil, err
	}
	global := ""
	if req.GlobalAlias != nil {
		global = *req.GlobalAlias
		if global == "" {
			return nil, badRequest("globalAlias must not be empty")
		}
	}
	var local *k2v.LocalAliasSpec
	if req.LocalAlias != nil {
		a := req.LocalAlias.Allow
		local = &k2v.LocalAliasSpec{KeyID: req.LocalAlias.AccessKeyID, Alias: req.LocalAlias.Alias, Allow: k2v.Perm{Read: a.Read, Write: a.Write, Owner: a.Owner}}
	}
	bk, err := s.cfg.Catalog.CreateBucket(global, local)
	if err != nil {
		return nil, err
	}
	return s.bucketInfo(bk)
}

func (s *Server) bucketID(rc *fasthttp.RequestCtx) (k2v.BucketID, error) {
	id, err := k2v.ParseBucketID(string(rc.QueryArgs().Peek("id")))
	if err != nil {
		return id, badRequest("query parameter id: %v", err)
	}
	return id, nil
}

func (s *Server) deleteBucket(rc *fasthttp.RequestCtx) (any, error) {
	id, err := s.bucketID(rc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return nil, s.cfg.Catalog.DeleteBucket(ctx, id)
}

func (s *Server) changePerm(rc *fasthttp.RequestCtx, allow bool) (any, error) {
	var req BucketKeyPermChangeRequest
	if err := decode(rc, &req); err != nil {
		return nil, err
	}
	id, err := k2v.ParseBucketID(req.BucketID)
	if err != nil {
		return nil, badRequest("bucketId: %v", err)
	}
	p := req.Permissions
	bk, err := s.cfg.Catalog.SetPermissions(id, req.AccessKeyID, k2v.Perm{Read: p.Read, Write: p.Write, Owner: p.Owner}, allow)
	if err != nil {
		return nil, err
	}
	return s.bucketInfo(bk)
}

func (s *Server) allowBucketKey(rc *fasthttp.RequestCtx) (any, error) { return s.changePerm(rc, true) }
func (s *Server) denyBucketKey(rc *fasthttp.RequestCtx) (any, error)  { return s.changePerm(rc, false) }

func (s *Server) alias(rc *fasthttp.RequestCtx, add bool) (any, error) {
	var req BucketAliasRequest
	if err := decode(rc, &req); err != nil {
		return nil, err
	}
	id, err := k2v.ParseBucketID(req.BucketID)
	if err != nil {
		return nil, badRequest("bucketId: %v", err)
	}
	if req.GlobalAlias == "" {
		return nil, badRequest("globalAlias is required (local aliases are set with CreateBucket)")
	}
	var bk *k2v.Bucket
	if add {
		bk, err = s.cfg.Catalog.AddAlias(id, req.GlobalAlias)
	} else {
		bk, err = s.cfg.Catalog.RemoveAlias(id, req.GlobalAlias)
	}
	if err != nil {
		return nil, err
	}
	return s.bucketInfo(bk)
}

func (s *Server) addBucketAlias(rc *fasthttp.RequestCtx) (any, error)    { return s.alias(rc, true) }
func (s *Server) removeBucketAlias(rc *fasthttp.RequestCtx) (any, error) { return s.alias(rc, false) }
