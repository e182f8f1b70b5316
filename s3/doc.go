// Package s3 will hold the S3 object model as k2v tables (objects,
// versions, multipart uploads, block references) and, in s3/s3http, the
// S3 HTTP API.
//
// Nothing is implemented yet (see the "S3 API core" issue); grange serves
// no S3 endpoint. The package exists so that the dependency rules of
// docs/architecture.md are checked from the start: s3 may import blocks,
// k2v and cluster.
package s3
