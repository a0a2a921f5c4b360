package pacing

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBudgetSharedFairly(t *testing.T) {
	// Two streams draw 1 KiB chunks from one 10 KiB/s budget, each asking
	// for its next chunk as soon as the last one left. Simulated on a
	// virtual clock: each gets half.
	b := NewBudget(10*1024, 1024)
	ready := [2]time.Time{t0, t0.Add(ms(3))}
	var sent [2]int
	for {
		s := 0
		if ready[1].Before(ready[0]) {
			s = 1
		}
		leave := ready[s].Add(b.Reserve(ready[s], 1024))
		if leave.After(t0.Add(60 * time.Second)) {
			break
		}
		sent[s] += 1024
		ready[s] = leave
	}
	total := sent[0] + sent[1]
	if total < 59*10*1024 || total > 61*10*1024 {
		t.Fatalf("%d bytes in 60 s, want about 600 KiB", total)
	}
	if diff := sent[0] - sent[1]; diff < -1024 || diff > 1024 {
		t.Fatalf("shares %d and %d bytes: not fair", sent[0], sent[1])
	}
}

func TestBudgetEmptyStartsAtZero(t *testing.T) {
	b := NewBudget(1000, 100)
	if d := b.Reserve(t0, 100); d != 0 {
		t.Fatalf("a new budget is full, yet 100 bytes wait %v", d)
	}
	b = NewBudget(1000, 100)
	b.Empty(t0)
	if d := b.Reserve(t0, 100); d != ms(100) {
		t.Fatalf("after Empty 100 bytes wait %v, want 100ms", d)
	}
}

func TestBudgetsShareByKeyAndRate(t *testing.T) {
	bs := NewBudgets(100)
	a := bs.Acquire("10.0.0.1", 1000, t0)
	b := bs.Acquire("10.0.0.1", 1000, t0)
	c := bs.Acquire("10.0.0.1", 2000, t0)
	d := bs.Acquire("10.0.0.2", 1000, t0)
	if a != b || a == c || a == d {
		t.Fatal("budgets are not one per key and rate")
	}
	if bs.Len() != 3 {
		t.Fatalf("%d budgets held, want 3", bs.Len())
	}
	for _, sb := range []*SharedBudget{a, b, c, d} {
		bs.Release(sb, t0)
	}
}

func TestBudgetsForgetIdleRefilledBudgets(t *testing.T) {
	bs := NewBudgets(100)
	a := bs.Acquire("a", 1000, t0)
	a.Value.Reserve(t0, a.Value.Burst())
	bs.Release(a, t0)
	if bs.Len() != 1 {
		t.Fatal("a budget still owed was forgotten")
	}
	// Once it has refilled, forgetting it changes nothing: it goes.
	later := t0.Add(time.Second)
	b := bs.Acquire("b", 1000, later)
	b.Value.Reserve(later, 10)
	bs.Release(b, later)
	if bs.Len() != 1 {
		t.Fatalf("%d budgets held, want only b", bs.Len())
	}
	// The same key acquired again gets a budget that is full, as the
	// forgotten one would have been.
	if d := bs.Acquire("a", 1000, later).Value.Reserve(later, 50); d != 0 {
		t.Fatalf("a fresh budget makes 50 bytes wait %v", d)
	}
}

func TestBudgetsHoldABoundedNumberOfKeys(t *testing.T) {
	bs := NewBudgets(100)
	// 10,000 clients, each owing its budget (no time passes, nothing
	// refills): the 100 idle shortest stay.
	for i := range 10000 {
		sb := bs.Acquire("client-"+strconv.Itoa(i), 1000, t0)
		sb.Value.Reserve(t0, sb.Value.Burst())
		bs.Release(sb, t0)
	}
	if n := bs.Len(); n > 100 {
		t.Fatalf("%d budgets held, want at most 100", n)
	}
	// Budgets with streams in flight are never forgotten.
	var held []*SharedBudget
	for i := range 300 {
		held = append(held, bs.Acquire("busy-"+strconv.Itoa(i), 1000, t0))
	}
	if n := bs.Len(); n < 300 {
		t.Fatalf("%d budgets held with 300 streams in flight", n)
	}
	for _, sb := range held {
		bs.Release(sb, t0)
	}
	if n := bs.Len(); n > 100 {
		t.Fatalf("%d budgets held after the streams ended, want at most 100", n)
	}
	// A long key costs no more than a short one.
	bs.Release(bs.Acquire(strings.Repeat("x", 1<<20), 1000, t0), t0)
	checkKeysBounded(t, &bs.pool, func(k budgetKey) string { return k.key })
}

// checkKeysBounded checks that a pool holds no key longer than a SHA-256 of
// a long one.
func checkKeysBounded[K comparable, V any](t *testing.T, p *pool[K, V], key func(K) string) {
	t.Helper()
	for k := range p.m {
		if n := len(key(k)); n > len("sha256:")+64 {
			t.Fatalf("a key of %d bytes is held", n)
		}
	}
}

func TestBudgetsMemoryStaysBoundedAtTheDefaultMaximum(t *testing.T) {
	const max, clients = 10000, 100000
	bs := NewBudgets(max)
	grown := heapGrowth(func() {
		for i := range clients {
			// keys at the longest kept as they are: 64 bytes
			key := fmt.Sprintf("%064d", i)
			sb := bs.Acquire(key, 1000, t0)
			sb.Value.Reserve(t0, sb.Value.Burst())
			bs.Release(sb, t0)
		}
	})
	held := bs.Len()
	perBudget := float64(grown) / float64(held)
	t.Logf("%d clients: %d budgets held, %.0f bytes each (%.1f MiB)", clients, held, perBudget, float64(grown)/(1<<20))
	if held > max {
		t.Errorf("%d budgets held, want at most %d", held, max)
	}
	if perBudget > 1024 {
		t.Errorf("%.0f bytes a budget, want at most 1 KiB", perBudget)
	}
	runtime.KeepAlive(bs)
}

// heapGrowth is how much the heap in use grew while f ran.
func heapGrowth(f func()) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc)
}
