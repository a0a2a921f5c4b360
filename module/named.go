package pace

import (
	"container/list"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// A named network (the option name) can be changed while it runs, through
// Caddy's admin API (admin.go), as a whole or one link at a time
// (linkchanges.go): a change lasts until it is deleted or the next config
// load, and applies to the links at once, and so to the streams they carry.

// named holds the named networks of the loaded configs.
var named = struct {
	sync.Mutex
	m map[string]*namedNetwork
}{m: map[string]*namedNetwork{}}

// A namedNetwork is a network with a name: its options as the config has
// them, the changes made to them live, and the options that result; and
// the links that have changes of their own.
type namedNetwork struct {
	name    string
	carried pacing.Tally // payload bytes its links carried
	links   *pacing.Links

	// mu guards what follows, and orders the changes of the links'
	// conditions, so that the last one sets the conditions in force.
	mu       sync.Mutex
	loaded   optionValues // the options as loaded
	config   *options     // and parsed
	patch    optionValues // live changes, by option name; "" clears one
	version  uint64       // counts changes of patch, so that none is lost
	current  *options     // the config with the live changes
	keyExpr  string       // share as loaded: the links' key; "" for the client's address
	own      map[string]*linkChange
	lru      list.List  // the links with changes of their own, most recently used first
	handlers []*Handler // provisioned handlers with this name, the last one's options in force (guarded by named)
}

var validName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// registerNamed makes h's network known by its name, with h's options. A
// config load that keeps the name takes its options, and drops the live
// changes; the links of the network stay, under the new conditions. (Two
// handlers of one config with the same name share the network, under the
// options of the one provisioned last.)
func registerNamed(h *Handler) *namedNetwork {
	named.Lock()
	defer named.Unlock()
	n := named.m[h.Name]
	if n == nil {
		n = &namedNetwork{name: h.Name, links: h.links, own: map[string]*linkChange{}}
		named.m[h.Name] = n
	}
	n.handlers = append(n.handlers, h)
	n.configure(h)
	return n
}

// configure puts the network under h's options, without live changes.
func (n *namedNetwork) configure(h *Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.loaded, n.config, n.keyExpr = h.values(), h.static, h.Share
	n.reset(time.Now())
}

// releaseNamed lets go of h's network, and forgets it with the last handler
// that has its name. When h's options were in force (a config load that
// failed after h was provisioned), those of the handler before it are.
func releaseNamed(n *namedNetwork, h *Handler) {
	named.Lock()
	defer named.Unlock()
	i := slices.Index(n.handlers, h)
	if i < 0 {
		return
	}
	n.handlers = slices.Delete(n.handlers, i, i+1)
	switch {
	case len(n.handlers) == 0:
		if named.m[n.name] == n {
			delete(named.m, n.name)
		}
	case i == len(n.handlers):
		n.configure(n.handlers[i-1])
	}
}

// lookupNamed returns the network called name, if a loaded config has it.
func lookupNamed(name string) (*namedNetwork, bool) {
	named.Lock()
	defer named.Unlock()
	n, ok := named.m[name]
	return n, ok
}

// namedNetworks returns the named networks, by name.
func namedNetworks() []*namedNetwork {
	named.Lock()
	defer named.Unlock()
	return slices.SortedFunc(maps.Values(named.m), func(a, b *namedNetwork) int { return strings.Compare(a.name, b.name) })
}

// change applies patch (option names and values, as in the config) on top
// of the config and earlier changes: a preset in it replaces what a preset
// sets (rtt, rate, upload_rate, latency) unless the patch sets those too.
// It reaches every link that has no change of its own. A value that does
// not parse is refused, with the error a config load would give, and
// nothing changes.
func (n *namedNetwork) change(patch optionValues, now time.Time) error {
	return n.update(patch, func() optionValues { return n.patch }, func(merged optionValues, o *options) {
		n.patch, n.current = merged, o
		n.apply(now)
	})
}

// update merges patch into the changes that changes returns, parses the
// result, and if it is good has commit take it, with n.mu held. Trace files
// are read with n.mu unlocked; a change that another overtook meanwhile is
// merged again.
func (n *namedNetwork) update(patch optionValues, changes func() optionValues, commit func(merged optionValues, o *options)) error {
	for name := range patch {
		if opt, ok := lookupOption(name); !ok || opt.is(notLive) {
			return fmt.Errorf("%q: not an option a live change can set (want one of %s)", name, liveOptions())
		}
	}
	for {
		n.mu.Lock()
		merged, version := n.merge(changes(), patch), n.version
		values := n.loaded.with(merged)
		n.mu.Unlock()
		o, err := values.parse(staticValue)
		if err == nil {
			err = values.check()
		}
		if err == nil && o.net == nil {
			err = fmt.Errorf("the change leaves no network (a preset, rtt or model must stay)")
		}
		if err != nil {
			return err
		}
		n.mu.Lock()
		if n.version != version {
			n.mu.Unlock()
			continue
		}
		n.version++
		commit(merged, &o)
		n.mu.Unlock()
		return nil
	}
}

// merge returns changes with patch over them: a preset in patch clears the
// parts of a preset that patch does not set.
func (n *namedNetwork) merge(changes, patch optionValues) optionValues {
	merged := maps.Clone(changes)
	if merged == nil {
		merged = optionValues{}
	}
	maps.Copy(merged, patch)
	if _, ok := patch["preset"]; ok {
		for i := range optionTable {
			part := &optionTable[i]
			switch _, set := patch[part.name]; {
			case !part.is(presetPart) || set:
			case n.loaded[part.name] != "":
				merged[part.name] = "" // cleared: the config's value goes too
			default:
				delete(merged, part.name)
			}
		}
	}
	return merged
}

// with is the values with patch over them; "" in patch clears a value.
func (v optionValues) with(patch optionValues) optionValues {
	out := maps.Clone(v)
	for name, s := range patch {
		if s == "" {
			delete(out, name)
		} else {
			out[name] = s
		}
	}
	return out
}

// restore drops the network's live changes: back to the config's options.
// Links with changes of their own keep them.
func (n *namedNetwork) restore(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.patch, n.current = nil, n.config
	n.version++
	n.apply(now)
}

// reset drops every live change, the links' too, with n.mu held.
func (n *namedNetwork) reset(now time.Time) {
	n.patch, n.current = nil, n.config
	n.version++
	for held := range n.own {
		n.restoreLinkHeld(held, now)
	}
	n.apply(now)
}

// apply puts the network's links under their conditions, with n.mu held:
// their own, or the network's.
func (n *namedNetwork) apply(now time.Time) {
	n.links.Named(n.name, func(key string, l *pacing.Link, _ int) {
		if cond := n.optionsOf(key).net.cond; l.Network() != cond {
			l.SetNetwork(cond, now)
		}
	})
}

// optionsOf returns the options of the link held as key (pacing.HeldKey),
// with n.mu held: its own, or the network's.
func (n *namedNetwork) optionsOf(key string) *options {
	if c, ok := n.own[key]; ok {
		return c.opts
	}
	return n.current
}

// linkKey is the key of r's link: share, resolved for r, or where it
// resolves empty (a request without the test's cookie) the client's
// address.
func (n *namedNetwork) linkKey(r *http.Request) string {
	n.mu.Lock()
	expr := n.keyExpr
	n.mu.Unlock()
	if expr != "" {
		if key := strings.TrimSpace(resolver(r)(expr)); key != "" {
			return key
		}
	}
	return clientAddress(r)
}

// optionsFor returns the options of r's link: its own, or the network's.
func (n *namedNetwork) optionsFor(r *http.Request) *options {
	key := pacing.HeldKey(n.linkKey(r))
	n.mu.Lock()
	defer n.mu.Unlock()
	if c, ok := n.own[key]; ok {
		n.lru.MoveToFront(c.elem)
		return c.opts
	}
	return n.current
}

// acquire takes r's link on the network, for one exchange, under its
// current conditions (a link made before a change that apply did not see
// yet is changed here).
func (n *namedNetwork) acquire(r *http.Request, now time.Time) *pacing.HeldLink {
	key := n.linkKey(r)
	n.mu.Lock()
	cond := n.optionsOf(pacing.HeldKey(key)).net.cond
	n.mu.Unlock()
	held := n.links.AcquireNamed(key, n.name, cond, &n.carried, now)
	n.mu.Lock()
	defer n.mu.Unlock()
	_, own := n.own[pacing.HeldKey(key)]
	held.Value.Keep(own)
	if cond := n.optionsOf(pacing.HeldKey(key)).net.cond; held.Value.Network() != cond {
		held.Value.SetNetwork(cond, now)
	}
	return held
}

// liveOptions lists the options a live change can set.
func liveOptions() string {
	var names []string
	for i := range optionTable {
		if !optionTable[i].is(notLive) {
			names = append(names, optionTable[i].name)
		}
	}
	return strings.Join(names, ", ")
}

// A networkState is what the admin API says of a named network.
type networkState struct {
	Name string `json:"name"`
	// The options in force, as strings, and which of them are live
	// changes.
	Options map[string]string `json:"options"`
	Changed map[string]string `json:"changed,omitempty"`
	// Live figures: clients with exchanges in flight, the exchanges (an
	// upgraded connection is one), and the payload bytes carried each way
	// since the name was first loaded.
	Clients   int   `json:"clients"`
	Streams   int64 `json:"streams"`
	BytesDown int64 `json:"bytes_down"`
	BytesUp   int64 `json:"bytes_up"`
	// The links held now, and those with changes of their own, by key.
	Links []linkState `json:"links"`
}

func (n *namedNetwork) state() networkState {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := networkState{Name: n.name, Options: n.optionsState(nil), Changed: maps.Clone(n.patch), Links: []linkState{}}
	s.BytesDown, s.BytesUp = n.carried.Down.Load(), n.carried.Up.Load()
	listed := map[string]bool{}
	n.links.Named(n.name, func(key string, l *pacing.Link, exchanges int) {
		s.Streams += int64(exchanges)
		if exchanges > 0 {
			s.Clients++
		}
		s.Links = append(s.Links, n.linkState(key, l, exchanges))
		listed[key] = true
	})
	for key := range n.own {
		if !listed[key] {
			s.Links = append(s.Links, n.linkState(key, nil, 0))
		}
	}
	slices.SortFunc(s.Links, func(a, b linkState) int { return strings.Compare(a.Key, b.Key) })
	return s
}

// optionsState is the options in force as the admin API shows them: the
// config's, with the network's live changes and then own over them.
func (n *namedNetwork) optionsState(own optionValues) map[string]string {
	o := n.loaded.with(n.patch)
	if own != nil {
		o = n.loaded.with(own)
	}
	delete(o, "name")
	return o
}

// decodePatch reads a live change: a JSON object of option names and
// string values.
func decodePatch(body []byte) (optionValues, error) {
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("want a JSON object of option names and values, such as {\"preset\": \"3g\"}: %v", err)
	}
	patch := optionValues{}
	for name, v := range raw {
		s, ok := v.(string)
		if !ok {
			example := "2%"
			if opt, known := lookupOption(name); known {
				example = opt.example
			}
			return nil, fmt.Errorf("%s: %v: values are strings, as in the config (want e.g. %q)", name, v, example)
		}
		patch[name] = s
	}
	return patch, nil
}
