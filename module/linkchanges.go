package pace

import (
	"container/list"
	"fmt"
	"maps"
	"net/url"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// One link of a named network (the link of one key of share: one test's,
// say) may be changed on its own, through the admin API
// (/pace/networks/<name>/links/<key>). It then has its own conditions: the
// config's, with its changes over them, which a change of the whole network
// does not reach. A link may be changed before its first request: it is
// made with its conditions when the request comes. The links with changes
// of their own are bounded as idle links are (maxIdleLinks): past that,
// the one used longest ago goes back to the network's conditions.

// A linkChange is one link's live change, and the options that result.
type linkChange struct {
	key   string       // the link's key, as pacing.HeldKey holds it
	patch optionValues // its changes over the config
	opts  *options
	elem  *list.Element // in namedNetwork.lru
}

// changeLink applies patch to the link of key, as change does to the whole
// network, with the same validation: it then has its own conditions.
func (n *namedNetwork) changeLink(key string, patch optionValues, now time.Time) error {
	held := pacing.HeldKey(key)
	changes := func() optionValues {
		if c, ok := n.own[held]; ok {
			return c.patch
		}
		return nil
	}
	return n.update(patch, changes, func(merged optionValues, o *options) {
		c, ok := n.own[held]
		if !ok {
			c = &linkChange{key: held}
			c.elem = n.lru.PushFront(c)
			n.own[held] = c
		}
		n.lru.MoveToFront(c.elem)
		c.patch, c.opts = merged, o
		// The link is made now if it is new, and kept while the change
		// lasts, so that its figures do too.
		l := n.links.AcquireNamed(key, n.name, o.net.cond, &n.carried, now)
		l.Value.Keep(true)
		n.links.Release(l, now)
		n.applyLink(held, now)
		for len(n.own) > maxIdleLinks {
			n.restoreLinkHeld(n.lru.Back().Value.(*linkChange).key, now)
		}
	})
}

// restoreLink drops the link of key's own change: it is back on the
// network's conditions.
func (n *namedNetwork) restoreLink(key string, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.restoreLinkHeld(pacing.HeldKey(key), now)
}

// restoreLinkHeld is restoreLink of a held key, with n.mu held.
func (n *namedNetwork) restoreLinkHeld(held string, now time.Time) {
	if c, ok := n.own[held]; ok {
		n.lru.Remove(c.elem)
		delete(n.own, held)
		n.version++
		if l, _, ok := n.links.Find(held, n.name); ok {
			l.Keep(false)
		}
		n.applyLink(held, now)
	}
}

// applyLink puts the link held as key, if it is live, under its
// conditions, with n.mu held.
func (n *namedNetwork) applyLink(held string, now time.Time) {
	if l, _, ok := n.links.Find(held, n.name); ok {
		if cond := n.optionsOf(held).net.cond; l.Network() != cond {
			l.SetNetwork(cond, now)
		}
	}
}

// A linkState is what the admin API says of one link of a named network.
type linkState struct {
	// The link's key: as the request's share resolved it, or its SHA-256
	// if that is longer than 64 bytes.
	Key string `json:"key"`
	// Its conditions, and its own changes if it has any (the network's
	// live changes do not reach it then).
	Options map[string]string `json:"options"`
	Changed map[string]string `json:"changed,omitempty"`
	// Exchanges in flight, and the payload bytes it carried each way since
	// it was made.
	Streams   int   `json:"streams"`
	BytesDown int64 `json:"bytes_down"`
	BytesUp   int64 `json:"bytes_up"`
}

// link returns the state of the link of key: live, changed on its own, or
// neither, when it is what the link would be.
func (n *namedNetwork) link(key string) linkState {
	n.mu.Lock()
	defer n.mu.Unlock()
	held := pacing.HeldKey(key)
	l, exchanges, _ := n.links.Find(held, n.name)
	return n.linkState(held, l, exchanges)
}

// linkState is the state of the link held as key, l if it is live, with
// n.mu held.
func (n *namedNetwork) linkState(held string, l *pacing.Link, exchanges int) linkState {
	s := linkState{Key: held, Streams: exchanges}
	if c, ok := n.own[held]; ok {
		s.Options, s.Changed = n.optionsState(c.patch), maps.Clone(c.patch)
	} else {
		s.Options = n.optionsState(nil)
	}
	if l != nil {
		s.BytesDown, s.BytesUp = l.Carried()
	}
	return s
}

// maxLinkKey bounds a link's key in the admin API's paths: more than a
// header or a cookie holds.
const maxLinkKey = 8 << 10

// parseLinkKey reads a link's key from the path segment that holds it,
// path-escaped, and refuses one that no request could have: empty, too
// long, not UTF-8 or with control characters.
func parseLinkKey(escaped string) (string, error) {
	key, err := url.PathUnescape(escaped)
	switch {
	case err != nil:
		return "", fmt.Errorf("link key %q: not path-escaped: %v", escaped, err)
	case key == "":
		return "", fmt.Errorf("link key %q: empty (want the value share resolves to for the link, path-escaped)", escaped)
	case len(key) > maxLinkKey:
		return "", fmt.Errorf("link key of %d bytes: at most %d", len(key), maxLinkKey)
	case !utf8.ValidString(key):
		return "", fmt.Errorf("link key %q: not UTF-8", escaped)
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return "", fmt.Errorf("link key %q: has a control character, which no header or cookie holds", escaped)
		}
	}
	return key, nil
}
