package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Wire format, version 1. Frozen once released: a change needs a new
// protocol name in the handshake prologue ("grange-rpc/2") and a new header
// version byte.
//
// After the handshake the connection is a sequence of records, each one
// Noise transport message:
//
//	record = length uint16 BE | ciphertext (length bytes, 16-byte AEAD tag included)
//
// A record's plaintext is one or more whole frames (a frame never spans
// records, so a record is parsed on its own):
//
//	frame = type uint8 | flags uint8 | length uint16 BE | stream uint64 BE | payload (length bytes)
const (
	recordHeaderLen = 2
	tagLen          = 16
	maxRecordLen    = math.MaxUint16                   // ciphertext, tag included: the Noise limit
	maxPlaintextLen = maxRecordLen - tagLen            // 65519
	frameHeaderLen  = 12                               // type, flags, length, stream
	maxFramePayload = maxPlaintextLen - frameHeaderLen // 65507
)

// frameType is the first byte of a frame.
type frameType uint8

const (
	// frameHello is the initiator's first transport frame, stream 0. The
	// responder counts the connection as established only once it has
	// decrypted it, so a replayed first handshake message gets nowhere.
	// Payload: protocol version (1), then bytes a later version may add.
	frameHello frameType = 1
	// frameRequest opens a stream. Payload: a request header.
	frameRequest frameType = 2
	// frameResponse answers a stream. Payload: a response header.
	frameResponse frameType = 3
	// frameData carries body bytes, then stream bytes. flagFin ends the
	// stream bytes. A frame is all body or all stream, never both.
	frameData frameType = 4
	// frameWindow grants the sender of a stream more credit for stream
	// bytes. Payload: increment uint32 BE, non-zero.
	frameWindow frameType = 5
	// frameReset aborts a stream. Payload: a reset code, then an optional
	// UTF-8 message.
	frameReset frameType = 6
	// frameGoAway, stream 0, empty: the sender will open no more streams
	// on this connection (it lost connection deduplication).
	frameGoAway frameType = 7
	// frameClose, stream 0, empty: after GoAway both ways and with no
	// stream left, the last frame a side sends; a side closes the socket
	// once it has sent and received Close, so no data is lost to a reset.
	frameClose frameType = 8
)

// flagFin on a data frame marks the end of the stream bytes.
const flagFin = 1

// Reset codes.
const (
	resetCancel   = 1 // the caller gave up: cancel the handler
	resetRefused  = 2 // too many concurrent streams; nothing was processed
	resetTooLarge = 3 // a body exceeds the receiver's MaxMessageBytes
	resetInternal = 4 // the sender failed mid-stream; message says why
)

// maxResetMessage bounds the message of a reset frame, and maxErrorMessage
// the error message of a response header.
const (
	maxResetMessage = 1024
	maxErrorMessage = 4096
	maxEndpointLen  = 255
)

var errFrame = errors.New("rpc: malformed frame")

type frameHeader struct {
	typ    frameType
	flags  uint8
	length int
	stream uint64
}

// appendFrameHeader appends a frame header for a payload of length bytes.
func appendFrameHeader(dst []byte, typ frameType, flags uint8, stream uint64, length int) []byte {
	return append(dst, byte(typ), flags, byte(length>>8), byte(length),
		byte(stream>>56), byte(stream>>48), byte(stream>>40), byte(stream>>32),
		byte(stream>>24), byte(stream>>16), byte(stream>>8), byte(stream))
}

// appendFrame appends a whole frame.
func appendFrame(dst []byte, typ frameType, flags uint8, stream uint64, payload []byte) []byte {
	dst = appendFrameHeader(dst, typ, flags, stream, len(payload))
	return append(dst, payload...)
}

// decodeFrame parses the frame at the start of b and returns it and the
// bytes after it. It checks everything that can be checked without stream
// state: known type, flags, stream 0 exactly for connection frames, and the
// payload size of fixed-size frames. The payload aliases b.
func decodeFrame(b []byte) (h frameHeader, payload, rest []byte, err error) {
	if len(b) < frameHeaderLen {
		return h, nil, nil, fmt.Errorf("%w: %d header bytes", errFrame, len(b))
	}
	h.typ = frameType(b[0])
	h.flags = b[1]
	h.length = int(binary.BigEndian.Uint16(b[2:4]))
	h.stream = binary.BigEndian.Uint64(b[4:12])
	if h.length > len(b)-frameHeaderLen {
		return h, nil, nil, fmt.Errorf("%w: length %d, %d bytes left", errFrame, h.length, len(b)-frameHeaderLen)
	}
	payload = b[frameHeaderLen : frameHeaderLen+h.length]
	rest = b[frameHeaderLen+h.length:]
	connFrame := false
	switch h.typ {
	case frameHello:
		connFrame = true
		if h.length < 1 {
			return h, nil, nil, fmt.Errorf("%w: empty hello", errFrame)
		}
	case frameGoAway, frameClose:
		connFrame = true
		if h.length != 0 {
			return h, nil, nil, fmt.Errorf("%w: type %d with payload", errFrame, h.typ)
		}
	case frameRequest, frameResponse:
	case frameData:
		if h.flags&^flagFin != 0 {
			return h, nil, nil, fmt.Errorf("%w: data flags %#x", errFrame, h.flags)
		}
	case frameWindow:
		if h.length != 4 || binary.BigEndian.Uint32(payload) == 0 {
			return h, nil, nil, fmt.Errorf("%w: window payload", errFrame)
		}
	case frameReset:
		if h.length < 1 || h.length > 1+maxResetMessage {
			return h, nil, nil, fmt.Errorf("%w: reset payload of %d bytes", errFrame, h.length)
		}
	default:
		return h, nil, nil, fmt.Errorf("%w: unknown type %d", errFrame, h.typ)
	}
	if h.typ != frameData && h.flags != 0 {
		return h, nil, nil, fmt.Errorf("%w: type %d flags %#x", errFrame, h.typ, h.flags)
	}
	if connFrame != (h.stream == 0) {
		return h, nil, nil, fmt.Errorf("%w: type %d on stream %d", errFrame, h.typ, h.stream)
	}
	return h, payload, rest, nil
}

// headerVersion is the first byte of request and response headers.
const headerVersion = 1

// Header flags.
const (
	hdrStream = 1 // stream bytes follow the body
	hdrError  = 2 // response only: the handler failed; message follows
)

// requestHeader is the payload of a request frame:
//
//	version uint8 (1) | priority uint8 | flags uint8 | timeout uvarint (ns, 0 = none)
//	| body length uvarint | endpoint length uvarint | endpoint
//
// The deadline travels as the time left when the frame was written, so
// clock skew between nodes does not matter; it grows by the network delay.
type requestHeader struct {
	Endpoint string
	Priority Priority
	Stream   bool
	Timeout  time.Duration // > 0; 0 = no deadline
	BodyLen  int
}

var errHeader = errors.New("rpc: malformed header")

func (h *requestHeader) appendTo(dst []byte) []byte {
	var flags byte
	if h.Stream {
		flags |= hdrStream
	}
	dst = append(dst, headerVersion, byte(h.Priority), flags)
	dst = binary.AppendUvarint(dst, uint64(max(h.Timeout, 0)))
	dst = binary.AppendUvarint(dst, uint64(h.BodyLen))
	dst = binary.AppendUvarint(dst, uint64(len(h.Endpoint)))
	return append(dst, h.Endpoint...)
}

// maxBodyLen bounds decoded body lengths before any configured limit, so
// that the value always fits an int.
const maxBodyLen = 1 << 40

func decodeRequestHeader(b []byte) (requestHeader, error) {
	var h requestHeader
	if len(b) < 3 {
		return h, fmt.Errorf("%w: %d bytes", errHeader, len(b))
	}
	if b[0] != headerVersion {
		return h, fmt.Errorf("%w: version %d", errHeader, b[0])
	}
	if Priority(b[1]) > Background {
		return h, fmt.Errorf("%w: priority %d", errHeader, b[1])
	}
	h.Priority = Priority(b[1])
	if b[2]&^hdrStream != 0 {
		return h, fmt.Errorf("%w: flags %#x", errHeader, b[2])
	}
	h.Stream = b[2]&hdrStream != 0
	b = b[3:]
	timeout, b, err := readUvarint(b, math.MaxInt64)
	if err != nil {
		return h, err
	}
	h.Timeout = time.Duration(timeout)
	bodyLen, b, err := readUvarint(b, maxBodyLen)
	if err != nil {
		return h, err
	}
	h.BodyLen = int(bodyLen)
	n, b, err := readUvarint(b, maxEndpointLen)
	if err != nil {
		return h, err
	}
	if uint64(len(b)) != n {
		return h, fmt.Errorf("%w: endpoint of %d bytes, %d left", errHeader, n, len(b))
	}
	h.Endpoint = string(b)
	return h, nil
}

// responseHeader is the payload of a response frame:
//
//	version uint8 (1) | flags uint8 | body length uvarint
//	| (if hdrError) message length uvarint | message
//
// An error response has no body and no stream.
type responseHeader struct {
	Stream  bool
	BodyLen int
	Error   bool
	Message string
}

func (h *responseHeader) appendTo(dst []byte) []byte {
	var flags byte
	if h.Stream {
		flags |= hdrStream
	}
	if h.Error {
		flags |= hdrError
	}
	dst = append(dst, headerVersion, flags)
	dst = binary.AppendUvarint(dst, uint64(h.BodyLen))
	if h.Error {
		msg := h.Message
		if len(msg) > maxErrorMessage {
			msg = msg[:maxErrorMessage]
		}
		dst = binary.AppendUvarint(dst, uint64(len(msg)))
		dst = append(dst, msg...)
	}
	return dst
}

func decodeResponseHeader(b []byte) (responseHeader, error) {
	var h responseHeader
	if len(b) < 2 {
		return h, fmt.Errorf("%w: %d bytes", errHeader, len(b))
	}
	if b[0] != headerVersion {
		return h, fmt.Errorf("%w: version %d", errHeader, b[0])
	}
	flags := b[1]
	if flags&^(hdrStream|hdrError) != 0 || flags == hdrStream|hdrError {
		return h, fmt.Errorf("%w: flags %#x", errHeader, flags)
	}
	h.Stream = flags&hdrStream != 0
	h.Error = flags&hdrError != 0
	bodyLen, b, err := readUvarint(b[2:], maxBodyLen)
	if err != nil {
		return h, err
	}
	h.BodyLen = int(bodyLen)
	if h.Error {
		if h.BodyLen != 0 {
			return h, fmt.Errorf("%w: error response with a body", errHeader)
		}
		var n uint64
		n, b, err = readUvarint(b, maxErrorMessage)
		if err != nil {
			return h, err
		}
		if uint64(len(b)) < n {
			return h, fmt.Errorf("%w: message of %d bytes, %d left", errHeader, n, len(b))
		}
		h.Message = string(b[:n])
		b = b[n:]
	}
	if len(b) != 0 {
		return h, fmt.Errorf("%w: %d trailing bytes", errHeader, len(b))
	}
	return h, nil
}

// readUvarint reads a minimally encoded uvarint no larger than limit.
func readUvarint(b []byte, limit uint64) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: bad varint", errHeader)
	}
	if n != uvarintLen(v) {
		return 0, nil, fmt.Errorf("%w: non-minimal varint", errHeader)
	}
	if v > limit {
		return 0, nil, fmt.Errorf("%w: value %d over %d", errHeader, v, limit)
	}
	return v, b[n:], nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
