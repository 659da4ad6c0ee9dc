package storage

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fold is the form in which the keys of a case-insensitive index are compared.
func Fold(s string) string { return strings.ToLower(s) }

// NormalKeys returns the keys an engine stores for the index: folded when it folds case, without
// empty and repeated ones. Keys that need none of that (the usual case: the domain derives them
// so) are returned as they are.
func (ix *Index) NormalKeys(keys []string) []string {
	if ix.normal(keys) {
		return keys
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if ix.Fold {
			k = Fold(k)
		}
		if k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func (ix *Index) normal(keys []string) bool {
	for i, k := range keys {
		if k == "" || (ix.Fold && Fold(k) != k) || slices.Contains(keys[:i], k) {
			return false
		}
	}
	return true
}

// MaxKeyLen bounds an indexed value and an id; the domain refuses longer ones before they get
// here.
const MaxKeyLen = 2048

// NewID returns a fresh record id: a UUIDv7 whose 12 bits after the millisecond timestamp
// count up within a millisecond, so that ids drawn one after another sort in the order they
// were drawn, and paging by id is paging by age.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	idClock.Lock()
	ms := uint64(time.Now().UnixMilli())
	if ms <= idClock.ms {
		ms = idClock.ms
		idClock.seq++
		if idClock.seq > 0xfff {
			ms++ // borrow the next millisecond rather than lose the order
			idClock.seq = 0
		}
	} else {
		idClock.seq = 0
	}
	idClock.ms = ms
	seq := idClock.seq
	idClock.Unlock()
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = 0x70 | byte(seq>>8)
	b[7] = byte(seq)
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var idClock struct {
	sync.Mutex
	ms  uint64
	seq uint16
}

// CheckID refuses a record id an engine cannot store: empty, or longer than MaxKeyLen.
func CheckID(id string) error {
	if id == "" || len(id) > MaxKeyLen {
		return Errorf(Invalid, "a record id is 1 to %d bytes", MaxKeyLen)
	}
	return nil
}
