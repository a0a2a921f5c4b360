package pacing

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// A pool holds values that streams share, one per key: made when the key is
// first used, and forgotten once no stream uses it and it is drained, when
// forgetting it and making a new one later changes nothing. At most max idle
// values are held: past that, the one idle longest is forgotten even if it
// is not drained. Values with streams are always kept, so the number held is
// bounded by max plus the streams. It is safe for concurrent use.
type pool[K comparable, V any] struct {
	max     int
	drained func(V, time.Time) bool

	mu   sync.Mutex
	m    map[K]*Held[K, V]
	idle list.List // *Held with no stream, longest idle first
}

// Held is a value of a pool, held for the streams that use it.
type Held[K comparable, V any] struct {
	Value   V
	key     K
	streams int           // guarded by pool.mu
	idle    *list.Element // in pool.idle while streams == 0
}

func newPool[K comparable, V any](max int, drained func(V, time.Time) bool) pool[K, V] {
	return pool[K, V]{max: max, drained: drained, m: make(map[K]*Held[K, V])}
}

// acquire returns the value for k, made by make if there is none, for one
// stream, which must hand it back with Release when it ends.
func (p *pool[K, V]) acquire(k K, now time.Time, make func() V) *Held[K, V] {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.m[k]
	if !ok {
		p.forget(now)
		h = &Held[K, V]{Value: make(), key: k}
		p.m[k] = h
	} else if h.idle != nil {
		p.idle.Remove(h.idle)
		h.idle = nil
	}
	h.streams++
	return h
}

// Release hands back a value that its Acquire returned.
func (p *pool[K, V]) Release(h *Held[K, V], now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h.streams--
	if h.streams == 0 {
		h.idle = p.idle.PushBack(h)
	}
	p.forget(now)
}

// each calls f for every value held, with its key and how many streams use
// it, under the pool's lock: f must not call the pool.
func (p *pool[K, V]) each(f func(k K, v V, streams int)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, h := range p.m {
		f(k, h.Value, h.streams)
	}
}

// find returns the value for k, if one is held, and how many streams use
// it.
func (p *pool[K, V]) find(k K) (v V, streams int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.m[k]
	if !ok {
		return v, 0, false
	}
	return h.Value, h.streams, true
}

// InUse is how many values have streams.
func (p *pool[K, V]) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m) - p.idle.Len()
}

// Len is how many values are held.
func (p *pool[K, V]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// forget drops idle values that are drained, longest idle first, and then
// the longest idle ones beyond max.
func (p *pool[K, V]) forget(now time.Time) {
	for e := p.idle.Front(); e != nil; e = p.idle.Front() {
		h := e.Value.(*Held[K, V])
		if !p.drained(h.Value, now) && p.idle.Len() < p.max {
			return
		}
		p.idle.Remove(e)
		delete(p.m, h.key)
	}
}

// maxKeyLen bounds the bytes a key keeps in memory: longer keys (a header
// an attacker chose) are held as their SHA-256.
const maxKeyLen = 64

// HeldKey is how a pool holds key: as it is, or if it is longer than 64
// bytes as "sha256:" and its SHA-256 in hex.
func HeldKey(key string) string {
	if len(key) <= maxKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}
