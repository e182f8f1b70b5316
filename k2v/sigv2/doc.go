// Package sigv2 verifies AWS Signature Version 2 on the server side, for
// the S3 API: s3cmd presigns URLs with it, and older tools still sign every
// request with it. Like k2v/sigv4 it is pure: a request described as strings
// goes in, a verdict comes out. It imports no grange package but k2v/sigv4,
// whose Request, Header, Lookup and error values it reuses, so that the S3
// layer describes a request once and maps the errors of both versions with
// one table; it imports no HTTP server.
//
// # What Verify checks
//
// Header-signed requests (Authorization: AWS AccessKeyId:Signature) and
// presigned ones (AWSAccessKeyId, Expires and Signature in the query):
//   - the form of the Authorization header or of the query parameters (each
//     at most once), and that Content-MD5, Content-Type, Date and x-amz-date
//     appear at most once;
//   - the clock: a header-signed request's x-amz-date, or else its Date,
//     must parse (RFC 1123 with "GMT" or a numeric zone, RFC 850, ANSI C) and
//     be within Config.MaxSkew of now either way; a missing date is
//     ErrMalformed. A presigned request must not be past its Expires
//     (ErrExpired), and its Expires must not be more than MaxPresignExpires
//     plus MaxSkew after now (ErrMalformed, as SigV4's X-Amz-Expires limit);
//   - the signature, base64(HMAC-SHA1(secret, StringToSign)), compared in
//     constant time.
//
// StringToSign is
//
//	Method \n Content-MD5 \n Content-Type \n Date \n CanonicalizedAmzHeaders CanonicalizedResource
//
// with these rules, which are those of the AWS page "Signing and
// authenticating REST requests (AWS signature version 2)" and of botocore's
// HmacV1Auth and s3cmd:
//   - Date: the Date header; empty when x-amz-date is present (it is then
//     signed among the x-amz-* headers); the Expires value, as received, for
//     a presigned request. Values of Content-MD5, Content-Type and Date are
//     trimmed.
//   - CanonicalizedAmzHeaders: every x-amz-* header, names lowercased and
//     sorted, values trimmed, the values of a repeated name joined with ','
//     in the order received, each as "name:value\n". Folded (multi-line)
//     values are not unfolded: HTTP servers no longer deliver them.
//   - Presigned requests: query parameters named x-amz-* are signed as
//     x-amz-* headers, and content-type or content-md5 query parameters
//     replace the headers of those names, because botocore's SigV2 presigner
//     moves those headers into the query.
//   - CanonicalizedResource: "/" + the bucket argument of Verify if it is not
//     empty (virtual-hosted-style requests; the caller takes it from Host),
//     then the raw path as received, still percent-encoded and never
//     normalised ("/" if empty), then the sub-resources of the query, sorted
//     by name (stably), as "?name" or "?name=value" joined with '&'. Values
//     are percent-decoded ('+' kept, invalid escapes kept as they are, as
//     botocore's unquote does). The sub-resources are exactly acl, cors,
//     delete, lifecycle, location, logging, notification, partNumber, policy,
//     requestPayment, response-cache-control, response-content-disposition,
//     response-content-encoding, response-content-language,
//     response-content-type, response-expires, restore, tagging, torrent,
//     uploadId, uploads, versionId, versioning, versions, website; names are
//     matched as received, case-sensitively.
//
// # What the caller must still do
//
//   - Pick the version: Is reports whether a request carries SigV2
//     credentials; SigV4 requests go to k2v/sigv4.
//   - Pass the virtual-hosted bucket: Verify(r, bucket, lookup) with bucket
//     the name taken from the Host header, or "" for path-style requests and
//     requests on the service itself.
//   - Check the body: SigV2 does not sign it. If Content-MD5 is present it
//     is signed, so the caller must compare it with the MD5 of the body read
//     (S3's BadDigest) before acting on it.
//   - For presigned requests, apply the x-amz-*, content-type and
//     content-md5 query parameters as request headers if the API honours
//     them (x-amz-security-token, x-amz-acl...): Verify only signs them.
//   - Map errors to S3 codes with errors.Is (they are sigv4's values, so one
//     table serves both): ErrAnonymous → anonymous access path or 403
//     AccessDenied; ErrUnknownKey → 403 InvalidAccessKeyId;
//     ErrSignatureMismatch → 403 SignatureDoesNotMatch; ErrExpired → 403
//     AccessDenied ("Request has expired"); ErrRequestTimeSkewed → 403
//     RequestTimeTooSkewed; ErrMalformed → 400 (InvalidArgument, or
//     AuthorizationHeaderMalformed / AuthorizationQueryParametersError). An
//     error matching none of them (a storage error from the Lookup) is an
//     internal error.
//   - Authorise: Verify says who signed, not what the key may do.
//   - Give Request.Headers every header as received with their values
//     unmodified, and Request.RawPath and RawQuery as received.
package sigv2
