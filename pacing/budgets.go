package pacing

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// Budgets holds the Budgets that streams share, one per key and rate, so
// that all streams of one client (or one site) draw from one rate. A budget
// is made when its key is first used and forgotten once no stream uses it
// and it has refilled, when forgetting it changes nothing. At most max idle
// budgets are held: past that, the one idle longest is forgotten even if it
// has not refilled. Budgets with streams in flight are always kept, so the
// number held is bounded by max plus the streams in flight. It is safe for
// concurrent use.
type Budgets struct {
	max int

	mu   sync.Mutex
	m    map[budgetKey]*SharedBudget
	idle list.List // *SharedBudget with no stream, longest idle first
}

type budgetKey struct {
	key  string
	rate float64
}

// A SharedBudget is a Budget held in Budgets for the streams that use it.
type SharedBudget struct {
	*Budget
	key     budgetKey
	streams int           // guarded by Budgets.mu
	idle    *list.Element // in Budgets.idle while streams == 0
}

// NewBudgets returns an empty set of shared budgets that holds at most max
// idle ones.
func NewBudgets(max int) *Budgets {
	return &Budgets{max: max, m: make(map[budgetKey]*SharedBudget)}
}

// maxKeyLen bounds the bytes a key keeps in memory: longer keys (a header
// an attacker chose) are held as their SHA-256.
const maxKeyLen = 64

// Acquire returns the budget of bytesPerSecond for key, for one stream, which
// must hand it back with Release when it ends.
func (bs *Budgets) Acquire(key string, bytesPerSecond float64, now time.Time) *SharedBudget {
	if len(key) > maxKeyLen {
		sum := sha256.Sum256([]byte(key))
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	k := budgetKey{key, bytesPerSecond}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	sb, ok := bs.m[k]
	if !ok {
		bs.forget(now)
		sb = &SharedBudget{Budget: NewBudget(bytesPerSecond, RateChunk(bytesPerSecond).N), key: k}
		bs.m[k] = sb
	} else if sb.idle != nil {
		bs.idle.Remove(sb.idle)
		sb.idle = nil
	}
	sb.streams++
	return sb
}

// Release hands back a budget that Acquire returned.
func (bs *Budgets) Release(sb *SharedBudget, now time.Time) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	sb.streams--
	if sb.streams == 0 {
		sb.idle = bs.idle.PushBack(sb)
	}
	bs.forget(now)
}

// Len is how many budgets are held.
func (bs *Budgets) Len() int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return len(bs.m)
}

// forget drops idle budgets that have refilled, longest idle first, and then
// the longest idle ones beyond max.
func (bs *Budgets) forget(now time.Time) {
	for e := bs.idle.Front(); e != nil; e = bs.idle.Front() {
		sb := e.Value.(*SharedBudget)
		if !sb.full(now) && bs.idle.Len() < bs.max {
			return
		}
		bs.idle.Remove(e)
		delete(bs.m, sb.key)
	}
}
