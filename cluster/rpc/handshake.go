package rpc

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"

	"github.com/grangeio/grange/cluster/layout"
)

// The handshake is Noise IKpsk1 (Noise_IKpsk1_25519_<cipher>_SHA256):
//
//	-> preamble: "grange-rpc/1" | suite uint8        (cleartext, 13 bytes)
//	-> len uint16 BE | e, es, s, ss, psk, payload     (msg1)
//	<- len uint16 BE | e, ee, se, payload             (msg2)
//	-> record with a hello frame                      (first transport message)
//
// The prologue is the preamble, so a tampered protocol name or suite fails
// the handshake. IK: the initiator knows the responder's static key (its
// node ID) in advance, so msg2 proves the responder is that node; msg1
// carries the initiator's static key, encrypted to the responder. psk1: the
// cluster secret is mixed in at the end of msg1, so a responder rejects a
// peer without the secret at msg1 and sends it nothing, and an initiator
// without the secret learns nothing either. Payloads are empty in version 1.
//
// The cipher suite is chosen by the initiator alone, from its own CPU
// (AES-GCM with AES and carry-less multiply instructions, else
// ChaCha20-Poly1305), and sent in the preamble. A responder accepts either,
// both being strong; since the suite is part of both the prologue and the
// Noise protocol name, a man in the middle who rewrites it only breaks the
// handshake.
const protocolName = "grange-rpc/1"

// Cipher suite identifiers of the preamble.
const (
	suiteAESGCM     = 1
	suiteChaChaPoly = 2
)

const (
	preambleLen = len(protocolName) + 1
	// maxHandshakeMsg bounds both handshake messages. With empty payloads
	// msg1 is 96 bytes and msg2 48.
	maxHandshakeMsg = 256
)

// hasAESHardware reports whether AES-GCM is fast and constant time here.
var hasAESHardware = (cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ) ||
	(cpu.ARM64.HasAES && cpu.ARM64.HasPMULL) ||
	(cpu.S390X.HasAES && cpu.S390X.HasGHASH)

// preferredSuite is the suite this node proposes when it dials. A variable
// so that tests can exercise both.
var preferredSuite = func() byte {
	if hasAESHardware {
		return suiteAESGCM
	}
	return suiteChaChaPoly
}()

func noiseSuite(id byte) (noise.CipherSuite, bool) {
	switch id {
	case suiteAESGCM:
		return noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashSHA256), true
	case suiteChaChaPoly:
		return noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256), true
	}
	return nil, false
}

func (t *Transport) noiseConfig(suite byte, initiator bool, peer []byte) (noise.Config, error) {
	cs, ok := noiseSuite(suite)
	if !ok {
		return noise.Config{}, fmt.Errorf("unknown cipher suite %d", suite)
	}
	return noise.Config{
		CipherSuite:           cs,
		Pattern:               noise.HandshakeIK,
		Initiator:             initiator,
		Prologue:              append([]byte(protocolName), suite),
		PresharedKey:          t.cfg.Secret[:],
		PresharedKeyPlacement: 1,
		StaticKeypair:         t.static,
		PeerStatic:            peer,
	}, nil
}

// clientHandshake runs the initiator's side on nc, which must have a
// deadline. It returns the transport ciphers once msg2 is verified; the
// caller then sends the hello record.
func (t *Transport) clientHandshake(nc net.Conn, want layout.NodeID) (send, recv *transportCipher, err error) {
	suite := preferredSuite
	cfg, err := t.noiseConfig(suite, true, want[:])
	if err != nil {
		return nil, nil, err
	}
	hs, err := noise.NewHandshakeState(cfg)
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, 0, preambleLen+2+maxHandshakeMsg)
	buf = append(buf, protocolName...)
	buf = append(buf, suite)
	buf = append(buf, 0, 0)
	buf, _, _, err = hs.WriteMessage(buf, nil)
	if err != nil {
		return nil, nil, err
	}
	binary.BigEndian.PutUint16(buf[preambleLen:], uint16(len(buf)-preambleLen-2))
	if _, err := nc.Write(buf); err != nil {
		return nil, nil, err
	}
	msg2, err := readHandshakeMsg(nc, buf[:0])
	if err != nil {
		return nil, nil, fmt.Errorf("read msg2: %w", err)
	}
	_, cs1, cs2, err := hs.ReadMessage(nil, msg2)
	if err != nil {
		return nil, nil, fmt.Errorf("msg2: %w (wrong node ID or cluster secret)", err)
	}
	if cs1 == nil || cs2 == nil {
		return nil, nil, errors.New("handshake incomplete after msg2")
	}
	return newTransportCipher(suite, cs1), newTransportCipher(suite, cs2), nil
}

// serverHandshake runs the responder's side up to and including msg2.
// Nothing is written unless msg1 proves the peer has the cluster secret.
func (t *Transport) serverHandshake(nc net.Conn) (peer layout.NodeID, send, recv *transportCipher, err error) {
	var pre [preambleLen]byte
	if _, err := io.ReadFull(nc, pre[:]); err != nil {
		return peer, nil, nil, fmt.Errorf("read preamble: %w", err)
	}
	if string(pre[:len(protocolName)]) != protocolName {
		return peer, nil, nil, fmt.Errorf("unknown protocol %q", pre[:len(protocolName)])
	}
	suite := pre[len(protocolName)]
	cfg, err := t.noiseConfig(suite, false, nil)
	if err != nil {
		return peer, nil, nil, err
	}
	hs, err := noise.NewHandshakeState(cfg)
	if err != nil {
		return peer, nil, nil, err
	}
	buf := make([]byte, 0, 2+maxHandshakeMsg)
	msg1, err := readHandshakeMsg(nc, buf)
	if err != nil {
		return peer, nil, nil, fmt.Errorf("read msg1: %w", err)
	}
	if _, _, _, err := hs.ReadMessage(nil, msg1); err != nil {
		return peer, nil, nil, fmt.Errorf("msg1: %w (wrong cluster secret?)", err)
	}
	rs := hs.PeerStatic()
	if len(rs) != len(peer) {
		return peer, nil, nil, errors.New("msg1: no static key")
	}
	copy(peer[:], rs)
	if peer == t.id {
		return peer, nil, nil, errors.New("peer uses this node's own key")
	}
	out := append(buf[:0], 0, 0)
	out, cs1, cs2, err := hs.WriteMessage(out, nil)
	if err != nil {
		return peer, nil, nil, err
	}
	if cs1 == nil || cs2 == nil {
		return peer, nil, nil, errors.New("handshake incomplete after msg2")
	}
	binary.BigEndian.PutUint16(out, uint16(len(out)-2))
	if _, err := nc.Write(out); err != nil {
		return peer, nil, nil, err
	}
	return peer, newTransportCipher(suite, cs2), newTransportCipher(suite, cs1), nil
}

// readHandshakeMsg reads one length-prefixed handshake message into buf.
func readHandshakeMsg(r io.Reader, buf []byte) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n == 0 || n > maxHandshakeMsg {
		return nil, fmt.Errorf("handshake message of %d bytes", n)
	}
	buf = append(buf[:0], make([]byte, n)...)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// transportCipher encrypts or decrypts one direction of a connection. It is
// Noise's CipherState with the nonce kept in place, so that sealing and
// opening in place allocate nothing. Not safe for concurrent use: the
// sending one belongs to whoever holds the writer, the receiving one to the
// read loop.
type transportCipher struct {
	aead      cipher.AEAD
	bigEndian bool // AESGCM encodes the nonce big-endian, ChaChaPoly little-endian
	n         uint64
	nonce     [12]byte
}

var errNonce = errors.New("rpc: nonce exhausted")

func newTransportCipher(suite byte, cs *noise.CipherState) *transportCipher {
	k := cs.UnsafeKey()
	c := &transportCipher{n: cs.Nonce()}
	switch suite {
	case suiteAESGCM:
		b, err := aes.NewCipher(k[:])
		if err != nil {
			panic(err) // a 32-byte key is always valid
		}
		c.aead, err = cipher.NewGCM(b)
		if err != nil {
			panic(err)
		}
		c.bigEndian = true
	default:
		var err error
		c.aead, err = chacha20poly1305.New(k[:])
		if err != nil {
			panic(err)
		}
	}
	return c
}

func (c *transportCipher) setNonce() error {
	if c.n >= noise.MaxNonce {
		return errNonce
	}
	if c.bigEndian {
		binary.BigEndian.PutUint64(c.nonce[4:], c.n)
	} else {
		binary.LittleEndian.PutUint64(c.nonce[4:], c.n)
	}
	c.n++
	return nil
}

// seal encrypts pt in place; cap(pt) must leave room for the tag.
func (c *transportCipher) seal(pt []byte) ([]byte, error) {
	if err := c.setNonce(); err != nil {
		return nil, err
	}
	return c.aead.Seal(pt[:0], c.nonce[:], pt, nil), nil
}

// open decrypts ct in place.
func (c *transportCipher) open(ct []byte) ([]byte, error) {
	if err := c.setNonce(); err != nil {
		return nil, err
	}
	return c.aead.Open(ct[:0], c.nonce[:], ct, nil)
}
