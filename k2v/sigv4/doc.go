// Package sigv4 verifies AWS Signature Version 4 on the server side, for the
// K2V API (service "k2v") and the S3 API (service "s3"). It is pure: a
// request described as strings goes in, a verdict comes out. It imports no
// other grange package and no HTTP server, so k2vhttp and s3http can share
// it, and it can be fuzzed alone.
//
// # What Verify checks
//
// Header-signed requests (Authorization: AWS4-HMAC-SHA256 …) and presigned
// ones (X-Amz-Algorithm and friends in the query):
//   - the form of the signature parameters, X-Amz-Date and
//     X-Amz-Content-Sha256 (header form) or X-Amz-Expires (presigned);
//   - that host and every x-amz-* header present are signed, and that every
//     signed header is present;
//   - the credential scope: day of X-Amz-Date, Config.Region or one of
//     Config.AltRegions, Config.Service, "aws4_request";
//   - the clock: a header-signed request within Config.MaxSkew of now either
//     way; a presigned one not more than MaxSkew early and not expired;
//   - the signature over the canonical request, compared in constant time.
//
// The canonical request follows docs/k2v-api.md §3.1, which is the
// behaviour of AWS signers and of Garage, with these choices:
//   - canonical URI: the raw path as received for "s3"; for any other
//     service the raw path encoded once more ('%' → "%25", '/' kept), as AWS
//     SDKs do for every service but S3. Never normalised;
//   - canonical query: form-decoded ('+' is a space) and re-encoded, sorted
//     by name then value (the AWS rule, which the SDKs follow);
//   - canonical header values: trimmed, repeated headers joined with ','.
//     Inner runs of spaces are kept, as the reference server does; AWS
//     signers collapse them, so when a signed value holds such a run and the
//     signature does not match, the collapsed spelling is tried too;
//   - an unsorted or upper-case SignedHeaders list is sorted and lowercased,
//     not rejected; a name given twice is rejected.
//
// # What the caller must still do
//
//   - Check the body. Auth.Mode says how: PayloadSHA256 → Auth.CheckPayload
//     on the whole body (or read it through Auth.NewBodyReader), before
//     acting on it; PayloadUnsigned → nothing to check; the streaming modes →
//     read the body through Auth.NewChunkedReader (Content-Encoding:
//     aws-chunked is then to be stripped, and x-amz-decoded-content-length
//     compared with what was read), and verify the checksum of the trailing
//     headers (Trailers) if the API promises it.
//   - For presigned requests, apply the X-Amz-* query parameters that are not
//     authentication parameters as request headers: PresignedHeaders returns
//     them. Verify does not need them.
//   - Map errors to wire codes with errors.Is, in one table per API. For K2V:
//     ErrAnonymous, ErrUnknownKey, ErrSignatureMismatch, ErrExpired → 403
//     AccessDenied; ErrMalformed → 400; ErrScopeMismatch → 400
//     AuthorizationHeaderMalformed; ErrRequestTimeSkewed → 400;
//     ErrPayloadMismatch → 400 InvalidDigest. An error matching none of
//     them (a storage error from the Lookup, a network error from the body)
//     is an internal error.
//   - Authorise: Verify says who signed, not what the key may do.
//   - Give Request.Headers every header as received, Host included (for
//     HTTP/2, the :authority), with their values unmodified.
//
// # Performance
//
// Signing keys are cached per (secret, day, region, service), at most 1024
// of them; with a cached key a Verify allocates only the
// returned Auth (see BenchmarkVerify).
package sigv4
