package pacing

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLinksAreOnePerClientAndNetwork(t *testing.T) {
	links := NewLinks(100)
	slow, fast := Network{RTT: ms(150), Down: 200_000}, Network{RTT: ms(60), Down: 1_125_000}
	a := links.Acquire("10.0.0.1", slow, t0)
	b := links.Acquire("10.0.0.1", slow, t0)
	c := links.Acquire("10.0.0.1", fast, t0)
	d := links.Acquire("10.0.0.2", slow, t0)
	if a != b || a == c || a == d {
		t.Fatal("links are not one per key and network")
	}
	// A link that still has bytes to carry is kept once idle; once it has
	// carried them, it is forgotten.
	a.Value.Open(nil, 0, t0).Down.Reserve(t0, 10_000)
	for _, l := range []*HeldLink{c, d, a, b} {
		links.Release(l, t0)
	}
	if n := links.Len(); n != 1 {
		t.Fatalf("%d links held, want the one still carrying", n)
	}
	links.Release(links.Acquire("10.0.0.3", slow, t0.Add(time.Second)), t0.Add(time.Second))
	if n := links.Len(); n != 0 {
		t.Fatalf("%d links held a second later, want none", n)
	}
}

func TestANamedNetworksLinksAreOnePerClientWhateverItsConditions(t *testing.T) {
	links := NewLinks(100)
	var tally Tally
	slow, fast := Network{RTT: ms(150), Down: 200_000}, Network{RTT: ms(60), Down: 1_125_000}
	a := links.AcquireNamed("10.0.0.1", "lab", slow, &tally, t0)
	b := links.AcquireNamed("10.0.0.1", "lab", fast, &tally, t0)
	c := links.AcquireNamed("10.0.0.1", "other", slow, &tally, t0)
	d := links.Acquire("10.0.0.1", slow, t0)
	if a != b || a == c || a == d || b.Value.Network() != slow {
		t.Fatal("a named network's links are not one per client, made under the conditions of the first")
	}
	var seen []int
	links.Named("lab", func(key string, l *Link, exchanges int) {
		if l != a.Value || key != "10.0.0.1" {
			t.Errorf("Named(lab) visited another network's link, or gave its key as %q", key)
		}
		seen = append(seen, exchanges)
	})
	if len(seen) != 1 || seen[0] != 2 {
		t.Errorf("Named(lab) saw exchanges %v, want [2]", seen)
	}
	x := a.Value.Open(nil, 0, t0)
	x.Down.Reserve(t0, 10_000)
	x.Up.Reserve(t0, 300)
	if tally.Down.Load() != 10_000 || tally.Up.Load() != 300 {
		t.Errorf("tally %d down, %d up, want 10,000 and 300", tally.Down.Load(), tally.Up.Load())
	}
	// Each link counts its own too, and Find finds it by its key.
	e := links.AcquireNamed("10.0.0.2", "lab", slow, &tally, t0)
	e.Value.Open(nil, 0, t0).Down.Reserve(t0, 5_000)
	if down, up := e.Value.Carried(); down != 5_000 || up != 0 || tally.Down.Load() != 15_000 {
		t.Errorf("the second client's link carried %d down, %d up, and the network %d down; want 5,000, 0 and 15,000", down, up, tally.Down.Load())
	}
	if l, exchanges, ok := links.Find("10.0.0.2", "lab"); !ok || l != e.Value || exchanges != 1 {
		t.Errorf("Find found %p with %d exchanges (%v), want the second client's link, with 1", l, exchanges, ok)
	}
	// A kept link stays while idle, until the bound of idle links.
	e.Value.Keep(true)
	links.Release(e, t0.Add(time.Hour))
	if _, _, ok := links.Find("10.0.0.2", "lab"); !ok {
		t.Error("a kept link was forgotten while idle")
	}
	if _, _, ok := links.Find("10.0.0.3", "lab"); ok {
		t.Error("Find found a link no client has")
	}
}

func TestLinksStayBoundedUnderTenThousandClients(t *testing.T) {
	const max, clients = 1000, 10000
	links := NewLinks(max)
	net := Network{RTT: ms(150), Down: 200_000, Up: 93_750}
	grown := heapGrowth(func() {
		for i := range clients {
			// Each client leaves its link with bytes still to carry.
			l := links.Acquire(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), net, t0)
			l.Value.Open(NewConn(t0), 2, t0).Down.Reserve(t0, 14480)
			links.Release(l, t0)
		}
	})
	if n := links.Len(); n > max {
		t.Fatalf("%d links held after %d clients, want at most %d", n, clients, max)
	}
	perLink := grown / int64(links.Len())
	t.Logf("%d clients left %d links, about %d bytes each", clients, links.Len(), perLink)
	if perLink > 2048 {
		t.Errorf("%d bytes a link", perLink)
	}
	// A long key costs no more than a short one.
	links.Release(links.Acquire(strings.Repeat("x", 1<<20), net, t0), t0)
	checkKeysBounded(t, &links.pool, func(k linkKey) string { return k.key })
}
