package pace

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// A named network (the option name) can be changed while it runs, through
// Caddy's admin API (admin.go): a change lasts until it is deleted or the
// next config load, and applies to the links of the network at once, and
// so to the streams they carry.

// named holds the named networks of the loaded configs.
var named = struct {
	sync.Mutex
	m map[string]*namedNetwork
}{m: map[string]*namedNetwork{}}

// A namedNetwork is a network with a name: its options as the config has
// them, the changes made to them live, and the options that result.
type namedNetwork struct {
	name     string
	loaded   optionValues // the options as loaded
	config   *options     // and parsed
	patch    optionValues // live changes, by option name; "" clears one
	version  uint64       // counts changes of patch, so that none is lost
	current  atomic.Pointer[options]
	handlers []*Handler   // provisioned handlers with this name, the last one's options in force
	carried  pacing.Tally // payload bytes its links carried
	links    *pacing.Links
	// mu orders the changes of the links' conditions, so that the last
	// one sets the conditions in force.
	mu sync.Mutex
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
		n = &namedNetwork{name: h.Name, links: h.links}
		named.m[h.Name] = n
	}
	n.handlers = append(n.handlers, h)
	n.configure(h)
	return n
}

// configure puts the network under h's options, without live changes.
func (n *namedNetwork) configure(h *Handler) {
	n.loaded, n.config = h.values(), h.static
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
// A value that does not parse is refused, with the error a config load
// would give, and nothing changes. Trace files are read outside the lock of
// the named networks; a change that another overtook meanwhile is merged
// again.
func (n *namedNetwork) change(patch optionValues, now time.Time) error {
	for name := range patch {
		if opt, ok := lookupOption(name); !ok || opt.is(notLive) {
			return fmt.Errorf("%q: not an option a live change can set (want one of %s)", name, liveOptions())
		}
	}
	for {
		named.Lock()
		merged, version := n.merge(patch), n.version
		values := n.loaded.with(merged)
		named.Unlock()
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
		named.Lock()
		if n.version != version {
			named.Unlock()
			continue
		}
		n.patch, n.version = merged, n.version+1
		n.current.Store(&o)
		named.Unlock()
		n.apply(now)
		return nil
	}
}

// merge returns the live changes with patch over them.
func (n *namedNetwork) merge(patch optionValues) optionValues {
	merged := maps.Clone(n.patch)
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

// restore drops the live changes: back to the config's options.
func (n *namedNetwork) restore(now time.Time) {
	named.Lock()
	defer named.Unlock()
	n.reset(now)
}

// reset is restore with named locked.
func (n *namedNetwork) reset(now time.Time) {
	n.patch = nil
	n.version++
	n.current.Store(n.config)
	n.apply(now)
}

// apply puts the network's links under its current conditions.
func (n *namedNetwork) apply(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	cond := n.current.Load().net.cond
	n.links.Named(n.name, func(l *pacing.Link, _ int) {
		if l.Network() != cond {
			l.SetNetwork(cond, now)
		}
	})
}

// acquire takes key's link on the network, for one exchange, under the
// network's current conditions (a link made before a change that apply did
// not see yet is changed here).
func (n *namedNetwork) acquire(key string, now time.Time) *pacing.HeldLink {
	held := n.links.AcquireNamed(key, n.name, n.current.Load().net.cond, &n.carried, now)
	n.mu.Lock()
	defer n.mu.Unlock()
	if cond := n.current.Load().net.cond; held.Value.Network() != cond {
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
}

func (n *namedNetwork) state() networkState {
	named.Lock()
	s := networkState{Name: n.name, Options: n.loaded.with(n.patch), Changed: maps.Clone(n.patch)}
	named.Unlock()
	delete(s.Options, "name")
	s.BytesDown, s.BytesUp = n.carried.Down.Load(), n.carried.Up.Load()
	n.links.Named(n.name, func(_ *pacing.Link, exchanges int) {
		s.Streams += int64(exchanges)
		if exchanges > 0 {
			s.Clients++
		}
	})
	return s
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
			return nil, fmt.Errorf("%s: %v: values are strings, as in the config (want e.g. \"2%%\")", name, v)
		}
		patch[name] = s
	}
	return patch, nil
}
