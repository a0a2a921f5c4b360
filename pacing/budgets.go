package pacing

import (
	"time"

	"golang.org/x/time/rate"
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
	return bs.acquire(budgetKey{HeldKey(key), bytesPerSecond}, now, func() *Budget {
		return NewBudget(bytesPerSecond, RateChunk(bytesPerSecond).N)
	})
}

// A Budget is a token bucket of bytes: it lets bytes leave at a rate, and
// lets up to its burst leave at once after an idle time. Streams that share
// a Budget share its rate, each waiting its turn. It is safe for concurrent
// use.
type Budget struct {
	lim *rate.Limiter
}

// NewBudget returns a budget of bytesPerSecond that holds at most burst bytes
// of credit (at least 1). It starts full, as a link that has been idle.
func NewBudget(bytesPerSecond float64, burst int) *Budget {
	return &Budget{lim: rate.NewLimiter(rate.Limit(bytesPerSecond), max(burst, 1))}
}

// Burst is the most bytes one Reserve may ask for.
func (b *Budget) Burst() int { return b.lim.Burst() }

// Rate is the budget's rate in bytes per second.
func (b *Budget) Rate() float64 { return float64(b.lim.Limit()) }

// Reserve books n bytes (1 ≤ n ≤ Burst) at now and returns how long to wait
// before sending them. Reservations are served in the order they are made,
// so streams that share the budget take turns.
func (b *Budget) Reserve(now time.Time, n int) time.Duration {
	// Rounded: the limiter's float arithmetic leaves delays a nanosecond
	// short, which a fake clock would see.
	return b.lim.ReserveN(now, n).DelayFrom(now).Round(time.Microsecond)
}

// Empty spends the credit that the budget holds at now, so that the next
// bytes wait for the rate: an upload Reader's budget starts this way, so
// that its first read is paced like the rest.
func (b *Budget) Empty(now time.Time) {
	b.lim.ReserveN(now, int(b.lim.TokensAt(now)))
}

// full reports whether the budget has all its credit back at now, so that
// forgetting it and making a new one later changes nothing.
func (b *Budget) full(now time.Time) bool {
	return b.lim.TokensAt(now) >= float64(b.lim.Burst())
}
