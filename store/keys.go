package store

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"time"

	"github.com/errpd/errpd/scheduler"
)

// This file is the one place where the string ids of the store's Go API
// (StepID, CycleKey) become bbolt keys and back (docs/store_encoding.md).
//
//	cycle key: domain "/" expiry (8 bytes, big-endian unix seconds)
//	step key:  domain "/" expiry (8 bytes) notice (1 byte, timeline order)
//
// The domain stays text and the "/" stays, so that keys sort exactly as
// the string ids did (a domain that is a prefix of another, as ab.co of
// ab.co.uk, included), a domain's steps are one prefix scan, and a cycle's
// steps come in timeline order. An id that does not parse (none that
// errpd makes) is kept as its text behind a 0x00 byte, which no domain
// starts with.

// noticeCodes numbers the notices in timeline order, which is also the
// order of their names: keys sort as the ids did.
var noticeCodes = []scheduler.Notice{"", scheduler.Reminder1, scheduler.Reminder2, scheduler.Reminder3, scheduler.Suspension}

func noticeCode(n scheduler.Notice) (byte, bool) {
	for i, v := range noticeCodes[1:] {
		if v == n {
			return byte(i + 1), true
		}
	}
	return 0, false
}

const textKey = 0x00

// idKey is the bbolt key of a step id or a cycle key.
func idKey(id string) []byte { return appendIDKey(nil, id) }

// appendIDKey appends idKey(id) to dst.
func appendIDKey(dst []byte, id string) []byte {
	domain, rest, ok := strings.Cut(id, "/")
	if !ok || domain == "" || domain[0] == textKey {
		return appendTextID(dst, id)
	}
	stampText, notice, isStep := strings.Cut(rest, "/")
	expiry, err := parseStamp(stampText)
	var canon [len(stamp)]byte // time.Parse takes fractions of a second too
	if err != nil || expiry.Unix() < 0 || string(appendStamp(canon[:0], expiry)) != stampText {
		return appendTextID(dst, id)
	}
	k := slices.Grow(dst, len(domain)+10)
	k = append(k, domain...)
	k = append(k, '/')
	k = binary.BigEndian.AppendUint64(k, uint64(expiry.Unix()))
	if isStep {
		code, ok := noticeCode(scheduler.Notice(notice))
		if !ok {
			return appendTextID(dst, id)
		}
		k = append(k, code)
	}
	return k
}

func appendTextID(dst []byte, id string) []byte { return append(append(dst, textKey), id...) }

// keyID is the string id of a key made by idKey; ok is false for bytes
// that are no such key.
func keyID(k []byte) (string, bool) {
	if len(k) > 0 && k[0] == textKey {
		return string(k[1:]), true
	}
	i := bytes.IndexByte(k, '/')
	if i <= 0 {
		return "", false
	}
	rest := k[i+1:]
	if len(rest) != 8 && len(rest) != 9 {
		return "", false
	}
	sec := binary.BigEndian.Uint64(rest)
	if sec > 1<<62 {
		return "", false
	}
	b := make([]byte, 0, i+1+len(stamp)+len("/suspension"))
	b = appendStamp(append(b, k[:i+1]...), time.Unix(int64(sec), 0))
	if len(rest) == 9 {
		if rest[8] == 0 || int(rest[8]) >= len(noticeCodes) {
			return "", false
		}
		b = append(append(b, '/'), noticeCodes[rest[8]]...)
	}
	return string(b), true
}

// keyParts are the parts of a cycle or step key; cycle and domain are
// prefixes of id, sharing its bytes.
type keyParts struct {
	id, cycle, domain string
	expiry            time.Time
	notice            scheduler.Notice // "" for a cycle key
}

// splitKey reads a cycle or step key into its parts: from the key's bytes
// when it is binary (no parse of the id it makes), through the id's text
// otherwise. Every step and cycle read from the store starts here.
func splitKey(k []byte) (keyParts, bool) {
	id, ok := keyID(k)
	if !ok {
		return keyParts{}, false
	}
	if k[0] == textKey {
		if domain, expiry, notice, err := ParseStepID(id); err == nil {
			return keyParts{id: id, cycle: CycleKey(domain, expiry), domain: domain, expiry: expiry, notice: notice}, true
		}
		domain, expiry, err := parseCycleKey(id)
		return keyParts{id: id, cycle: id, domain: domain, expiry: expiry}, err == nil
	}
	i := bytes.IndexByte(k, '/')
	p := keyParts{id: id, domain: id[:i], cycle: id, expiry: time.Unix(int64(binary.BigEndian.Uint64(k[i+1:])), 0).UTC()}
	if len(k) == i+10 {
		p.notice = noticeCodes[k[i+9]]
		p.cycle = id[:strings.LastIndexByte(id, '/')]
	}
	return p, true
}

// mustID is keyID for keys the store wrote itself; a key that is no id
// shows as its hex, so that an error can name it.
func mustID(k []byte) string {
	if id, ok := keyID(k); ok {
		return id
	}
	return "0x" + hexString(k)
}

// prefixKey is where a scan of the ids starting with prefix begins and
// the key prefix it stays in; exact reports that every key with that
// prefix is an id with the string prefix (no filtering needed).
func prefixKey(prefix string) (k []byte, exact bool) {
	domain, rest, ok := strings.Cut(prefix, "/")
	if !ok {
		return []byte(prefix), true
	}
	k = append([]byte(domain), '/')
	if rest == "" {
		return k, true
	}
	// A prefix into the expiry or notice: scan the domain, filter by id.
	if full := idKey(strings.TrimSuffix(prefix, "/")); full[0] != textKey && strings.HasSuffix(prefix, "/") && strings.Count(prefix, "/") == 2 {
		return full, true // "domain/expiry/": one cycle's steps
	}
	return k, false
}

// Key is the bbolt key of a step id or cycle key, for tools and tests that
// read or damage the file directly; errpd itself goes through Tx.
func Key(id string) []byte { return idKey(id) }
