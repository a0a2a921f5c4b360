package pacing

import "time"

// Budgets holds the Budgets that streams share, one per key and rate, so
// that all streams of one client (or one site) draw from one rate. A budget
// is made when its key is first used and forgotten once no stream uses it
// and it has refilled, when forgetting it changes nothing. At most max idle
// budgets are held: past that, the one idle longest is forgotten even if it
// has not refilled. Budgets with streams in flight are always kept, so the
// number held is bounded by max plus the streams in flight. It is safe for
// concurrent use.
type Budgets struct {
	pool[budgetKey, *Budget]
}

type budgetKey struct {
	key  string
	rate float64
}

// A SharedBudget is a Budget held in Budgets for the streams that use it.
type SharedBudget = Held[budgetKey, *Budget]

// NewBudgets returns an empty set of shared budgets that holds at most max
// idle ones.
func NewBudgets(max int) *Budgets {
	return &Budgets{pool: newPool[budgetKey](max, (*Budget).full)}
}

// Acquire returns the budget of bytesPerSecond for key, for one stream, which
// must hand it back with Release when it ends.
func (bs *Budgets) Acquire(key string, bytesPerSecond float64, now time.Time) *SharedBudget {
	return bs.acquire(budgetKey{heldKey(key), bytesPerSecond}, now, func() *Budget {
		return NewBudget(bytesPerSecond, RateChunk(bytesPerSecond).N)
	})
}
