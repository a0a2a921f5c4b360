package pacing

import (
	"sync/atomic"
	"time"
)

// Links holds the Links of clients, one per key (a client's address, or a
// share key) and Network, so that all of a client's connections and
// requests go through one link. A link is made when its key is first used
// and forgotten once no exchange uses it and it has carried all that was
// booked on it, when forgetting it changes nothing; at most max idle links
// are held (see pool). It is safe for concurrent use.
type Links struct {
	pool[linkKey, *Link]
}

type linkKey struct {
	key  string
	name string  // a named network's: its links are its clients', whatever its conditions
	net  Network // an unnamed network's conditions
}

// A HeldLink is a Link held in Links for the exchanges that use it.
type HeldLink = Held[linkKey, *Link]

// NewLinks returns an empty set of links that holds at most max idle ones.
func NewLinks(max int) *Links {
	return &Links{pool: newPool[linkKey](max, (*Link).drained)}
}

// Acquire returns the link under net for key, for one exchange, which must
// hand it back with Release when it ends.
func (ls *Links) Acquire(key string, net Network, now time.Time) *HeldLink {
	return ls.acquire(linkKey{key: HeldKey(key), net: net}, now, func() *Link { return NewLink(net, now) })
}

// A Tally counts the payload bytes that links carry, down and up.
type Tally struct{ Down, Up atomic.Int64 }

// AcquireNamed returns the link of the network called name for key, made
// under net if it is new, and counting what it carries in tally too. The
// link is the same whatever the network's conditions: changing them is
// SetNetwork's (Named and Find find the links).
func (ls *Links) AcquireNamed(key, name string, net Network, tally *Tally, now time.Time) *HeldLink {
	return ls.acquire(linkKey{key: HeldKey(key), name: name}, now, func() *Link {
		l := NewLink(net, now)
		l.down.total, l.up.total = &tally.Down, &tally.Up
		return l
	})
}

// Named calls f for every link of the network called name, with its key as
// HeldKey gave it and how many exchanges use it, under the links' lock: f
// must not call the links.
func (ls *Links) Named(name string, f func(key string, l *Link, exchanges int)) {
	ls.each(func(k linkKey, l *Link, streams int) {
		if k.name == name {
			f(k.key, l, streams)
		}
	})
}

// Find returns the link of the network called name for key as HeldKey gave
// it (as Named gives it), if one is held, and how many exchanges use it.
func (ls *Links) Find(key, name string) (l *Link, exchanges int, ok bool) {
	return ls.find(linkKey{key: key, name: name})
}
