package store

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
)

// Message is the exact bytes of a notice as rendered once, stored before it
// is sent, so that what is sent and what is uploaded as proof are the same.
// The bytes are kept gzip-compressed with their SHA-256.
type Message struct {
	SHA256 string `json:"sha256"` // hex, of the raw (uncompressed) bytes
	Size   int    `json:"size"`
	Gzip   []byte `json:"gzip"`
}

// gzipWriters reuses compressors: each holds about a megabyte of state,
// and allocating one per message dominated the cost of sending.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return zw
}}

// PutMessage stores the raw bytes of a step's message.
func (t *Tx) PutMessage(stepID string, raw []byte) (Message, error) {
	p, err := PrepareMessage(raw)
	if err != nil {
		return Message{}, err
	}
	return p.Message, t.PutPrepared(stepID, p)
}

// Prepared is a message compressed, hashed and encoded ahead of its write
// transaction, so that the transaction (which every other writer waits
// for) only copies bytes.
type Prepared struct {
	Message Message
	value   []byte
}

// PrepareMessage does PutMessage's work that needs no transaction.
func PrepareMessage(raw []byte) (Prepared, error) {
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		return Prepared{}, err
	}
	sum := sha256.Sum256(raw)
	m := Message{SHA256: hex.EncodeToString(sum[:]), Size: len(raw), Gzip: buf.Bytes()}
	v, err := m.marshal()
	return Prepared{Message: m, value: v}, err
}

// PutPrepared stores a prepared message.
func (t *Tx) PutPrepared(stepID string, p Prepared) error {
	if p.value == nil {
		return fmt.Errorf("message of %s was not prepared", stepID)
	}
	return t.tx.Bucket(bucketMessages).Put(idKey(stepID), p.value)
}

// Message returns a step's stored raw bytes, checked against their hash.
func (t *Tx) Message(stepID string) ([]byte, Message, bool, error) {
	var m Message
	ok, err := getJSON(t.tx.Bucket(bucketMessages), idKey(stepID), &m)
	if err != nil || !ok {
		return nil, m, ok, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(m.Gzip))
	if err != nil {
		return nil, m, true, fmt.Errorf("message of %s: %w", stepID, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, m, true, fmt.Errorf("message of %s: %w", stepID, err)
	}
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != m.SHA256 {
		return raw, m, true, fmt.Errorf("message of %s: stored bytes do not match their SHA-256", stepID)
	}
	return raw, m, true, nil
}
