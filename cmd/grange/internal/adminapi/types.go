// Package adminapi is grange's administration HTTP API: the operation names
// and JSON shapes of Garage's admin API v2 (POST/GET /v2/<Operation>,
// bearer token), served by every node and used by the grange CLI. The types
// here are the wire format, shared by the server and the client.
package adminapi

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Region  string `json:"region"`
	Path    string `json:"path"`
}

// GetClusterHealthResponse reports whether the cluster can serve requests.
type GetClusterHealthResponse struct {
	// Status is "healthy", "degraded" or "unavailable".
	Status           string `json:"status"`
	KnownNodes       int    `json:"knownNodes"`
	ConnectedNodes   int    `json:"connectedNodes"`
	StorageNodes     int    `json:"storageNodes"`
	StorageNodesOk   int    `json:"storageNodesOk"`
	Partitions       int    `json:"partitions"`
	PartitionsQuorum int    `json:"partitionsQuorum"`
	PartitionsAllOk  int    `json:"partitionsAllOk"`
}

// ListKeysResponseItem is one element of the ListKeys response array.
type ListKeysResponseItem struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// KeyPerm are the global permissions of a key.
type KeyPerm struct {
	CreateBucket bool `json:"createBucket"`
}

// BucketKeyPerm are the permissions of a key on a bucket.
type BucketKeyPerm struct {
	Read  bool `json:"read"`
	Write bool `json:"write"`
	Owner bool `json:"owner"`
}

// KeyInfoBucketResponse is a bucket as seen from a key.
type KeyInfoBucketResponse struct {
	ID            string        `json:"id"`
	GlobalAliases []string      `json:"globalAliases"`
	LocalAliases  []string      `json:"localAliases"`
	Permissions   BucketKeyPerm `json:"permissions"`
}

// GetKeyInfoResponse describes a key; it is also the response of
// CreateKey and ImportKey. SecretAccessKey is only set when asked for.
type GetKeyInfoResponse struct {
	Name            string                  `json:"name"`
	AccessKeyID     string                  `json:"accessKeyId"`
	SecretAccessKey *string                 `json:"secretAccessKey,omitempty"`
	Permissions     KeyPerm                 `json:"permissions"`
	Buckets         []KeyInfoBucketResponse `json:"buckets"`
}

// CreateKeyRequest is the body of CreateKey.
type CreateKeyRequest struct {
	Name *string `json:"name"`
}

// ImportKeyRequest is the body of ImportKey.
type ImportKeyRequest struct {
	AccessKeyID     string  `json:"accessKeyId"`
	SecretAccessKey string  `json:"secretAccessKey"`
	Name            *string `json:"name"`
}

// BucketLocalAlias is a local alias in ListBuckets.
type BucketLocalAlias struct {
	AccessKeyID string `json:"accessKeyId"`
	Alias       string `json:"alias"`
}

// ListBucketsResponseItem is one element of the ListBuckets response array.
type ListBucketsResponseItem struct {
	ID            string             `json:"id"`
	GlobalAliases []string           `json:"globalAliases"`
	LocalAliases  []BucketLocalAlias `json:"localAliases"`
}

// GetBucketInfoKey is a key with permissions in GetBucketInfo.
type GetBucketInfoKey struct {
	AccessKeyID        string        `json:"accessKeyId"`
	Name               string        `json:"name"`
	Permissions        BucketKeyPerm `json:"permissions"`
	BucketLocalAliases []string      `json:"bucketLocalAliases"`
}

// BucketQuotas are the quotas of a bucket (none are enforced yet: always
// null).
type BucketQuotas struct {
	MaxSize    *uint64 `json:"maxSize"`
	MaxObjects *uint64 `json:"maxObjects"`
}

// GetBucketInfoResponse describes a bucket; it is also the response of
// the bucket-changing operations.
type GetBucketInfoResponse struct {
	ID            string             `json:"id"`
	Created       string             `json:"created,omitempty"`
	GlobalAliases []string           `json:"globalAliases"`
	WebsiteAccess bool               `json:"websiteAccess"`
	WebsiteConfig *struct{}          `json:"websiteConfig"`
	Keys          []GetBucketInfoKey `json:"keys"`
	// Objects and Bytes count S3 objects (none before the S3 API exists).
	Objects                        int64        `json:"objects"`
	Bytes                          int64        `json:"bytes"`
	UnfinishedUploads              int64        `json:"unfinishedUploads"`
	UnfinishedMultipartUploads     int64        `json:"unfinishedMultipartUploads"`
	UnfinishedMultipartUploadParts int64        `json:"unfinishedMultipartUploadParts"`
	UnfinishedMultipartUploadBytes int64        `json:"unfinishedMultipartUploadBytes"`
	Quotas                         BucketQuotas `json:"quotas"`
}

// CreateBucketLocalAlias names the bucket for one key at creation.
type CreateBucketLocalAlias struct {
	AccessKeyID string        `json:"accessKeyId"`
	Alias       string        `json:"alias"`
	Allow       BucketKeyPerm `json:"allow"`
}

// CreateBucketRequest is the body of CreateBucket.
type CreateBucketRequest struct {
	GlobalAlias *string                 `json:"globalAlias"`
	LocalAlias  *CreateBucketLocalAlias `json:"localAlias"`
}

// BucketKeyPermChangeRequest is the body of AllowBucketKey and
// DenyBucketKey: the permissions set to true are granted or revoked.
type BucketKeyPermChangeRequest struct {
	BucketID    string        `json:"bucketId"`
	AccessKeyID string        `json:"accessKeyId"`
	Permissions BucketKeyPerm `json:"permissions"`
}

// BucketAliasRequest is the body of AddBucketAlias and RemoveBucketAlias
// (global aliases only).
type BucketAliasRequest struct {
	BucketID    string `json:"bucketId"`
	GlobalAlias string `json:"globalAlias"`
}

// UpdateKeyRequestBody is the body of UpdateKey.
type UpdateKeyRequestBody struct {
	Name  *string  `json:"name"`
	Allow *KeyPerm `json:"allow"`
	Deny  *KeyPerm `json:"deny"`
}
