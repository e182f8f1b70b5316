// Package adminapi is grange's administration HTTP API: the operation names
// and JSON shapes of Garage's admin API v2 (POST/GET /v2/<Operation>,
// bearer token), served by every node and used by the grange CLI. The types
// here are the wire format, shared by the server and the client.
package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

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

// GetClusterStatusResponse lists the nodes this node knows: its peers, the
// nodes of the current layout and the nodes still draining data from an
// older layout version.
type GetClusterStatusResponse struct {
	// LayoutVersion is the current layout version (0: none applied yet).
	LayoutVersion uint64     `json:"layoutVersion"`
	Nodes         []NodeResp `json:"nodes"`
}

// NodeResp is one node of GetClusterStatus.
type NodeResp struct {
	// ID is the full node ID (64 hex digits).
	ID string `json:"id"`
	// GarageVersion is the version of the node's software; it is only
	// known for the node that answers (null for the others).
	GarageVersion *string `json:"garageVersion"`
	// Role is the node's role in the current layout (null: none).
	Role *NodeAssignedRole `json:"role"`
	// Addr is the RPC address other nodes dial (null: unknown).
	Addr     *string `json:"addr"`
	Hostname *string `json:"hostname"`
	IsUp     bool    `json:"isUp"`
	// LastSeenSecsAgo is the time since the last successful contact (null:
	// none since this node started).
	LastSeenSecsAgo *uint64 `json:"lastSeenSecsAgo"`
	// Draining is set for a node without a role in the current layout that
	// still stores data of an older, still active, layout version.
	Draining bool `json:"draining"`
	// RTTMs is grange's own: the smoothed round-trip time of pings to the
	// node in milliseconds (null for the answering node or before the
	// first ping). Garage clients ignore it.
	RTTMs *float64 `json:"rttMs"`
}

// NodeAssignedRole is a node's role: its zone, its capacity in bytes (null
// for a gateway node, which stores nothing) and free-form tags.
type NodeAssignedRole struct {
	Zone     string   `json:"zone"`
	Capacity *uint64  `json:"capacity"`
	Tags     []string `json:"tags"`
}

// ConnectNodeResponse is one element of the ConnectClusterNodes response:
// the request body is an array of "<node id>@<host:port>" strings and the
// response has one element per string, in the same order.
type ConnectNodeResponse struct {
	Success bool    `json:"success"`
	Error   *string `json:"error"`
}

// MultiResponse is the response of the operations Garage addresses to
// nodes with ?node= (self, * or a node ID): the answers of the nodes
// asked, keyed by node ID, and the errors of the others. grange answers
// for the node that serves the request only; another node ID gets an
// error entry saying to ask that node.
type MultiResponse[T any] struct {
	Success map[string]T      `json:"success"`
	Error   map[string]string `json:"error"`
}

// GetNodeInfoResponse is the response of GetNodeInfo.
type GetNodeInfoResponse = MultiResponse[LocalGetNodeInfoResponse]

// LocalGetNodeInfoResponse describes the software of one node. Garage's
// field names are kept: garageVersion holds grange's version and
// rustVersion the Go version it was built with.
type LocalGetNodeInfoResponse struct {
	NodeID         string    `json:"nodeId"`
	GarageVersion  string    `json:"garageVersion"`
	GarageFeatures *[]string `json:"garageFeatures"`
	RustVersion    string    `json:"rustVersion"`
	DBEngine       string    `json:"dbEngine"`
}

// GetClusterLayoutResponse is the current layout and the changes staged
// for the next version; it is also the response of UpdateClusterLayout and
// RevertClusterLayout.
type GetClusterLayoutResponse struct {
	Version uint64           `json:"version"`
	Roles   []LayoutNodeRole `json:"roles"`
	// Parameters are those the current version was computed with.
	Parameters LayoutParameters `json:"parameters"`
	// PartitionSize is the bytes each partition replica may use: the
	// usable capacity of a node is its partition count times this.
	PartitionSize     uint64           `json:"partitionSize"`
	StagedRoleChanges []NodeRoleChange `json:"stagedRoleChanges"`
	// StagedParameters is null unless a parameter change is staged.
	StagedParameters *LayoutParameters `json:"stagedParameters"`
}

// LayoutNodeRole is a node with a role in a layout version.
type LayoutNodeRole struct {
	ID   string   `json:"id"`
	Zone string   `json:"zone"`
	Tags []string `json:"tags"`
	// Capacity is null for a gateway node.
	Capacity *uint64 `json:"capacity"`
	// StoredPartitions is the number of partitions on the node.
	StoredPartitions *uint64 `json:"storedPartitions"`
	// UsableCapacity is StoredPartitions × PartitionSize.
	UsableCapacity *uint64 `json:"usableCapacity"`
}

// NodeRoleChange is a staged change of a node's role: either a new role
// ({"id", "zone", "capacity", "tags"}; capacity null for a gateway) or a
// removal ({"id", "remove": true}).
type NodeRoleChange struct {
	ID     string
	Remove bool
	// Zone, Capacity and Tags are the new role when Remove is false.
	Zone     string
	Capacity *uint64
	Tags     []string
}

type nodeRoleUpdateJSON struct {
	ID       string   `json:"id"`
	Zone     string   `json:"zone"`
	Capacity *uint64  `json:"capacity"`
	Tags     []string `json:"tags"`
}

type nodeRoleRemoveJSON struct {
	ID     string `json:"id"`
	Remove bool   `json:"remove"`
}

// MarshalJSON writes one of the two shapes of a role change.
func (c NodeRoleChange) MarshalJSON() ([]byte, error) {
	if c.Remove {
		return json.Marshal(nodeRoleRemoveJSON{ID: c.ID, Remove: true})
	}
	tags := c.Tags
	if tags == nil {
		tags = []string{}
	}
	return json.Marshal(nodeRoleUpdateJSON{ID: c.ID, Zone: c.Zone, Capacity: c.Capacity, Tags: tags})
}

// UnmarshalJSON reads either shape; it refuses unknown fields and a mix
// of the two.
func (c *NodeRoleChange) UnmarshalJSON(b []byte) error {
	var v struct {
		ID       string          `json:"id"`
		Remove   *bool           `json:"remove"`
		Zone     *string         `json:"zone"`
		Capacity json.RawMessage `json:"capacity"`
		Tags     []string        `json:"tags"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("role change: %w", err)
	}
	*c = NodeRoleChange{ID: v.ID}
	if v.Remove != nil {
		if v.Zone != nil || v.Capacity != nil || v.Tags != nil {
			return errors.New(`role change: "remove" cannot be combined with "zone", "capacity" or "tags"`)
		}
		if !*v.Remove {
			return errors.New(`role change: "remove" must be true (to change a role, give "zone", "capacity" and "tags")`)
		}
		c.Remove = true
		return nil
	}
	if v.Zone == nil {
		return errors.New(`role change: "zone" is required (or "remove": true)`)
	}
	c.Zone, c.Tags = *v.Zone, v.Tags
	if len(v.Capacity) > 0 && string(v.Capacity) != "null" {
		var n uint64
		if err := json.Unmarshal(v.Capacity, &n); err != nil {
			return fmt.Errorf("role change: capacity: %w", err)
		}
		c.Capacity = &n
	}
	return nil
}

// LayoutParameters are the parameters of the layout computation.
type LayoutParameters struct {
	ZoneRedundancy ZoneRedundancy `json:"zoneRedundancy"`
}

// ZoneRedundancy is the number of distinct zones each partition must be
// replicated in: AtLeast n, or when AtLeast is 0 "maximum" (as many as
// there are replicas, or as zones if there are fewer). On the wire it is
// the string "maximum" or the object {"atLeast": n}.
type ZoneRedundancy struct {
	AtLeast int
}

// MarshalJSON implements json.Marshaler.
func (z ZoneRedundancy) MarshalJSON() ([]byte, error) {
	if z.AtLeast == 0 {
		return []byte(`"maximum"`), nil
	}
	return json.Marshal(struct {
		AtLeast int `json:"atLeast"`
	}{z.AtLeast})
}

// UnmarshalJSON implements json.Unmarshaler.
func (z *ZoneRedundancy) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s != "maximum" {
			return fmt.Errorf(`zoneRedundancy %q: want "maximum" or {"atLeast": n}`, s)
		}
		z.AtLeast = 0
		return nil
	}
	var v struct {
		AtLeast *int `json:"atLeast"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || v.AtLeast == nil {
		return fmt.Errorf(`zoneRedundancy %s: want "maximum" or {"atLeast": n}`, b)
	}
	if *v.AtLeast < 1 {
		return fmt.Errorf("zoneRedundancy: atLeast must be at least 1, not %d", *v.AtLeast)
	}
	z.AtLeast = *v.AtLeast
	return nil
}

// String is "maximum" or "at least N".
func (z ZoneRedundancy) String() string {
	if z.AtLeast == 0 {
		return "maximum"
	}
	return fmt.Sprintf("at least %d", z.AtLeast)
}

// UpdateClusterLayoutRequest stages role changes and parameters for the
// next layout version. A role change replaces the node's whole role.
type UpdateClusterLayoutRequest struct {
	Roles      []NodeRoleChange  `json:"roles"`
	Parameters *LayoutParameters `json:"parameters"`
}

// PreviewClusterLayoutChangesResponse is the layout that applying the
// staged changes would give: {"message": [...], "newLayout": {...}}, or
// {"error": "..."} when it cannot be computed.
type PreviewClusterLayoutChangesResponse struct {
	Error     string
	Message   []string
	NewLayout *GetClusterLayoutResponse
}

type previewJSON struct {
	Error     *string                   `json:"error,omitempty"`
	Message   []string                  `json:"message,omitempty"`
	NewLayout *GetClusterLayoutResponse `json:"newLayout,omitempty"`
}

// MarshalJSON writes one of the two shapes.
func (p PreviewClusterLayoutChangesResponse) MarshalJSON() ([]byte, error) {
	if p.NewLayout == nil {
		e := p.Error
		return json.Marshal(previewJSON{Error: &e})
	}
	msg := p.Message
	if msg == nil {
		msg = []string{}
	}
	return json.Marshal(struct {
		Message   []string                  `json:"message"`
		NewLayout *GetClusterLayoutResponse `json:"newLayout"`
	}{msg, p.NewLayout})
}

// UnmarshalJSON reads either shape.
func (p *PreviewClusterLayoutChangesResponse) UnmarshalJSON(b []byte) error {
	var v previewJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = PreviewClusterLayoutChangesResponse{Message: v.Message, NewLayout: v.NewLayout}
	if v.Error != nil {
		p.Error = *v.Error
	}
	if p.NewLayout == nil && p.Error == "" {
		return errors.New(`preview: neither "newLayout" nor "error"`)
	}
	return nil
}

// ApplyClusterLayoutRequest applies the staged changes. Version must be
// the current version plus one, so that two operators cannot apply
// different changes under the same number.
type ApplyClusterLayoutRequest struct {
	Version uint64 `json:"version"`
}

// ApplyClusterLayoutResponse is the new current layout and what computing
// it reported (free text, one line per element: not to be parsed).
type ApplyClusterLayoutResponse struct {
	Message []string                 `json:"message"`
	Layout  GetClusterLayoutResponse `json:"layout"`
}

// GetClusterLayoutHistoryResponse describes the layout versions this node
// knows and how far each node has followed them.
type GetClusterLayoutHistoryResponse struct {
	CurrentVersion uint64 `json:"currentVersion"`
	// MinAck is the lowest version every node has acknowledged.
	MinAck uint64 `json:"minAck"`
	// Versions are sorted newest first.
	Versions []ClusterLayoutVersion `json:"versions"`
	// UpdateTrackers are keyed by node ID, for every node of an active
	// version. Garage sends null when a single version is active; grange
	// always sends them.
	UpdateTrackers map[string]NodeUpdateTrackers `json:"updateTrackers"`
}

// Layout version statuses.
const (
	// LayoutCurrent is the version writes and reads go to.
	LayoutCurrent = "Current"
	// LayoutDraining is an older version still active while data moves to
	// the newer ones.
	LayoutDraining = "Draining"
	// LayoutHistorical is a version no longer used.
	LayoutHistorical = "Historical"
)

// ClusterLayoutVersion is one version in GetClusterLayoutHistory.
type ClusterLayoutVersion struct {
	Version      uint64 `json:"version"`
	Status       string `json:"status"`
	StorageNodes uint64 `json:"storageNodes"`
	GatewayNodes uint64 `json:"gatewayNodes"`
}

// NodeUpdateTrackers are the highest layout versions a node has
// acknowledged (it routes requests by it), synced (it holds all the data
// of it) and seen synced everywhere.
type NodeUpdateTrackers struct {
	Ack     uint64 `json:"ack"`
	Sync    uint64 `json:"sync"`
	SyncAck uint64 `json:"syncAck"`
}

// ClusterLayoutSkipDeadNodesRequest asks to advance the trackers of the
// storage nodes that are down (Garage v2's ClusterLayoutSkipDeadNodes).
type ClusterLayoutSkipDeadNodesRequest struct {
	Version          uint64 `json:"version"`
	AllowMissingData bool   `json:"allowMissingData"`
}

// ClusterLayoutSkipDeadNodesResponse lists the nodes whose trackers moved.
type ClusterLayoutSkipDeadNodesResponse struct {
	AckUpdated  []string `json:"ackUpdated"`
	SyncUpdated []string `json:"syncUpdated"`
}
