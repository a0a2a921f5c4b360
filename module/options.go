package pace

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// An option is one setting of pace, described once: the Caddyfile parser,
// the JSON config, live changes, the quick command's flags and the docs all
// take it from here (optionTable).
type option struct {
	// name is the option's name in the Caddyfile, in JSON and in a live
	// change; the quick command's flag is the same with - for _.
	name  string
	field func(*Handler) *string // where the value is
	parse func(d *draft, v string) error
	// args is the most Caddyfile arguments the value may take (a size may
	// be written `64 KiB`), and what says what they are, for errors.
	args    int
	what    string
	example string // a value, for errors
	help    string // what the option does, in one line
	kind    optionKind
}

// An optionKind says where an option works.
type optionKind uint8

const (
	// timing: it says what to slow; with no timing option set, pace is
	// the bare `pace 1KiB 100ms`.
	timing optionKind = 1 << iota
	// makesNetwork: setting it makes a network.
	makesNetwork
	// networkOnly: it works on a network only.
	networkOnly
	// presetPart: a preset sets it, and a live change of preset replaces
	// it unless the change sets it too.
	presetPart
	// notLive: a live change cannot set it (the network's name, its
	// links' key).
	notLive
	// noFlag: the quick command has no flag for it.
	noFlag
)

func (opt *option) is(k optionKind) bool { return opt.kind&k != 0 }

// optionTable is every option of pace, in the order the Caddyfile syntax
// and the docs list them.
var optionTable = []option{{
	name: "preset", field: func(h *Handler) *string { return &h.Preset }, parse: parsePreset,
	args: 1, what: "a preset name (3g, slow-3g, slow-4g, fast-3g, fast-4g, offline)", example: "slow-4g",
	help: "a network: the link behind a Chrome DevTools profile, or offline", kind: timing | makesNetwork,
}, {
	name: "rtt", field: func(h *Handler) *string { return &h.RTT }, parse: func(d *draft, v string) (err error) {
		d.rtt, err = parseDuration(v)
		d.rttSet, d.netMade = true, true
		return err
	},
	args: 1, what: "one duration", example: "150ms",
	help: "a network's round-trip time", kind: timing | makesNetwork | presetPart,
}, {
	name: "model", field: func(h *Handler) *string { return &h.Model }, parse: parseModel,
	args: 1, what: "link or devtools", example: "devtools",
	help: "how a network's numbers apply: as a packet-level link (default), or as DevTools does", kind: timing | makesNetwork,
}, {
	name: "trace", field: func(h *Handler) *string { return &h.Trace }, parse: func(d *draft, v string) (err error) {
		d.net.cond.DownTrace, err = loadTrace(v)
		return err
	},
	args: 2, what: "a trace file for the way down, and optionally one for the way up", example: "down.trace",
	help: "a network's capacity down over time, a Mahimahi trace file, in place of rate", kind: networkOnly,
}, {
	name: "upload_trace", field: func(h *Handler) *string { return &h.UploadTrace }, parse: func(d *draft, v string) (err error) {
		d.net.cond.UpTrace, err = loadTrace(v)
		return err
	},
	args: 1, what: "one trace file", example: "up.trace",
	help: "a network's capacity up over time, in place of upload_rate", kind: networkOnly,
}, {
	name: "loss", field: func(h *Handler) *string { return &h.Loss }, parse: parseLoss,
	args: 3, what: "a percentage, and optionally burst <n> (2%, 2% burst 3)", example: "2%",
	help: "the share of a network's packets lost each way, optionally in bursts", kind: networkOnly,
}, {
	name: "outage", field: func(h *Handler) *string { return &h.Outage }, parse: parseOutage,
	args: 3, what: "<duration> every <duration> (2s every 30s)", example: "2s every 30s",
	help: "a network carries nothing for a while, periodically", kind: networkOnly,
}, {
	name: "queue", field: func(h *Handler) *string { return &h.Queue }, parse: parseQueue,
	args: 2, what: "a bound (1000 packets, 1MB, 2s) or fair", example: "1000 packets",
	help: "a network's bottleneck queue each way, first in first out: 1000 packets (default), 1MB, 2s, or fair", kind: networkOnly,
}, {
	name: "reset", field: func(h *Handler) *string { return &h.Reset }, parse: func(d *draft, v string) (err error) {
		d.net.reset, err = parsePercent(v)
		d.net.reset /= 100
		return err
	},
	args: 1, what: "a percentage (10%)", example: "10%",
	help: "cut this share of a network's paced responses mid-body, as an abort", kind: networkOnly,
}, {
	name: "name", field: func(h *Handler) *string { return &h.Name }, parse: func(d *draft, v string) error {
		if !validName.MatchString(v) {
			return fmt.Errorf("%q: a network's name is 1 to 64 letters, digits, dots, hyphens or underscores", v)
		}
		return nil
	},
	args: 1, what: "one name", example: "site",
	help: "names a network, so that the admin API changes it live", kind: networkOnly | notLive | noFlag,
}, {
	name: "chunk", field: func(h *Handler) *string { return &h.Chunk }, parse: func(d *draft, v string) (err error) {
		d.o.chunk, err = pacing.ParseChunk(v)
		d.chunkSet = true
		return err
	},
	args: 2, what: "a count and a unit (5chars, 3 words, 1KiB, 512 bytes)", example: "5chars",
	help: "how much goes out at once, then a flush: 5chars, 3words, 1line, 1event, 1KiB", kind: timing,
}, {
	name: "interval", field: func(h *Handler) *string { return &h.Interval }, parse: func(d *draft, v string) (err error) {
		d.o.interval, err = parseDuration(v)
		return err
	},
	args: 1, what: "one duration", example: "100ms",
	help: "time from the start of one chunk to the start of the next", kind: timing,
}, {
	name: "rate", field: func(h *Handler) *string { return &h.Rate }, parse: func(d *draft, v string) (err error) {
		d.o.rate, err = pacing.ParseRate(v)
		d.rateSet = true
		return err
	},
	args: 2, what: "a rate (64KiB, 1MB, 500kbit)", example: "64KiB",
	help: "bytes per second: 64KiB, 1MB, 500kbit; on a network, its rate down", kind: timing | presetPart,
}, {
	name: "latency", field: func(h *Handler) *string { return &h.Latency }, parse: func(d *draft, v string) (err error) {
		d.o.latency, err = parseDuration(v)
		d.latencySet = true
		return err
	},
	args: 1, what: "one duration", example: "300ms",
	help: "time the response head is held", kind: timing | presetPart,
}, {
	name: "jitter", field: func(h *Handler) *string { return &h.Jitter }, parse: func(d *draft, v string) (err error) {
		d.o.jitter, err = parsePercent(v)
		d.o.jitter /= 100
		return err
	},
	args: 1, what: "a percentage (20%)", example: "20%",
	help: "random ± variation of the gaps between chunks",
}, {
	name: "after", field: func(h *Handler) *string { return &h.After }, parse: func(d *draft, v string) (err error) {
		d.o.after, err = pacing.ParseSize(v)
		return err
	},
	args: 2, what: "a size (1MiB)", example: "1MiB",
	help: "the first bytes of the body go out unpaced",
}, {
	name: "content_type", field: func(h *Handler) *string { return &h.ContentType }, parse: parseContentType,
	args: 3, what: "auto, keep or a media type", example: "keep",
	help: "auto (default), keep, or a media type to set",
}, {
	name: "share", field: func(h *Handler) *string { return &h.Share }, parse: func(d *draft, v string) error {
		d.o.share = v
		return nil
	},
	args: 1, what: "one key, such as {remote_host}", example: "{cookie.pace_link}",
	help: "one rate for all responses with this key; on a network, its links' key, e.g. {cookie.pace_link}", kind: notLive,
}, {
	name: "percent", field: func(h *Handler) *string { return &h.Percent }, parse: func(d *draft, v string) (err error) {
		d.o.percent, err = parsePercent(v)
		return err
	},
	args: 1, what: "a number from 0 to 100", example: "50",
	help: "pace only this share of requests",
}, {
	name: "max_duration", field: func(h *Handler) *string { return &h.MaxDuration }, parse: func(d *draft, v string) (err error) {
		d.o.maxDuration, err = parseDuration(v)
		if err == nil && d.o.maxDuration == 0 {
			err = fmt.Errorf("%q: must be above zero", v)
		}
		return err
	},
	args: 1, what: "one duration", example: "2m",
	help: "past it, the rest of the body goes out unpaced",
}, {
	name: "upload_rate", field: func(h *Handler) *string { return &h.UploadRate }, parse: func(d *draft, v string) (err error) {
		d.o.uploadRate, err = pacing.ParseRate(v)
		d.uploadSet = true
		return err
	},
	args: 2, what: "a rate (64KiB, 1MB, 500kbit)", example: "500kbit",
	help: "pace reading the request body too; on a network, its rate up", kind: timing | presetPart,
}}

// lookupOption returns the option called name.
func lookupOption(name string) (*option, bool) {
	for i := range optionTable {
		if optionTable[i].name == name {
			return &optionTable[i], true
		}
	}
	return nil, false
}

// optionNames lists the names of the options of kind k (all if k is 0),
// in the table's order: "preset, rtt and model" with and, or "a, b" with
// sep ", ".
func optionNames(k optionKind, last string) string {
	var names []string
	for i := range optionTable {
		if k == 0 || optionTable[i].is(k) {
			names = append(names, optionTable[i].name)
		}
	}
	if len(names) < 2 || last == ", " {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:len(names)-1], ", ") + last + names[len(names)-1]
}

// options are pace's settings for one request, parsed and put together by
// build: how the response is paced, and the network it goes through, if
// any.
type options struct {
	chunk       pacing.ChunkSize
	paced       bool // the body is cut in chunks and flushed
	interval    time.Duration
	rate        float64 // the response's own rate, bytes per second; 0 for none
	latency     time.Duration
	jitter      float64 // 0.2 for 20%
	after       int64
	contentType string // contentTypeAuto, contentTypeKeep or a media type
	untouched   bool   // no header is set or changed: a network carries the response as it is
	share       string // the key of a shared rate, resolved; "" for none
	percent     float64
	maxDuration time.Duration
	uploadRate  float64 // the request body's own rate

	net *network // the network the request goes through; nil for none
}

const (
	contentTypeAuto = "auto"
	contentTypeKeep = "keep"
)

// defaultInterval is the pause of the bare `pace` directive.
const defaultInterval = 100 * time.Millisecond

// wrapsResponse reports whether the response needs a wrapper at all: to
// pace its body or to hold its head.
func (o *options) wrapsResponse() bool {
	return o.paced || o.latency > 0
}

// A draft is the options as they are parsed, each value on its own, before
// build puts them together.
type draft struct {
	o                            options
	chunkSet, rateSet, uploadSet bool
	latencySet, rttSet, netMade  bool
	queueSet                     bool
	rtt                          time.Duration
	preset                       *preset // nil for none
	net                          network // the parts of a network, if one is made
}

// optionValues are options' values as written, by name: a config's, or a
// config's with live changes over it.
type optionValues map[string]string

// values returns h's option values.
func (h *Handler) values() optionValues {
	v := optionValues{}
	for i := range optionTable {
		if s := *optionTable[i].field(h); s != "" {
			v[optionTable[i].name] = s
		}
	}
	return v
}

// parse parses h's options, each value passed through resolve first.
func (h *Handler) parse(resolve func(string) string) (options, error) {
	return h.values().parse(resolve)
}

// parse parses the options, each value passed through resolve first; a
// value that resolves empty leaves its option unset. The error names the
// option, the value and what is accepted.
func (v optionValues) parse(resolve func(string) string) (options, error) {
	d := draft{o: options{contentType: contentTypeAuto, percent: 100}}
	if v.isBare() {
		d.o.chunk, d.chunkSet, d.o.interval = pacing.DefaultChunk, true, defaultInterval
	}
	for i := range optionTable {
		if err := optionTable[i].apply(&d, v[optionTable[i].name], resolve); err != nil {
			return d.o, err
		}
	}
	return d.build(), nil
}

// apply parses the option's value, resolved, into d.
func (opt *option) apply(d *draft, value string, resolve func(string) string) error {
	s := strings.TrimSpace(resolve(value))
	if s == "" {
		return nil
	}
	if err := opt.parse(d, s); err != nil {
		return fmt.Errorf("%s %w", opt.name, err)
	}
	return nil
}

// isBare reports whether no option says what to slow: then the directive
// is the bare `pace`, which paces 1 KiB every 100 ms.
func (v optionValues) isBare() bool {
	for i := range optionTable {
		if optionTable[i].is(timing) && v[optionTable[i].name] != "" {
			return false
		}
	}
	return true
}

// mayBeNetwork reports whether the options make a network, or may for some
// request once their placeholders resolve.
func (v optionValues) mayBeNetwork() bool {
	for i := range optionTable {
		if optionTable[i].is(makesNetwork) && v[optionTable[i].name] != "" {
			return true
		}
	}
	return false
}

// build puts the parsed values together: a network, if a preset, rtt or
// model made one, takes the rates, the round trip, a devtools latency and
// the share key as its own; a preset fills what no option set. It is the one
// place that decides whether a pace is a network.
func (d *draft) build() options {
	o := d.o
	if !d.netMade {
		switch {
		case d.chunkSet:
		case o.rate > 0:
			o.chunk = pacing.RateChunk(o.rate)
		default:
			o.chunk = pacing.DefaultChunk
		}
		o.paced = d.chunkSet || o.interval > 0 || o.rate > 0
		return o
	}
	n := d.net
	c := &n.cond
	c.RTT = d.rtt
	if p := d.preset; p != nil {
		n.preset, c.Offline = p.name, p.offline
		down, up := p.down, p.up
		if c.Model == pacing.DevToolsModel {
			down, up = p.dtDown, p.dtUp
			if !d.latencySet {
				o.latency = p.latency
			}
		} else if !d.rttSet {
			c.RTT = p.rtt
		}
		if !d.rateSet {
			o.rate = down
		}
		if !d.uploadSet {
			o.uploadRate = up
		}
	}
	c.Down, c.Up, o.rate, o.uploadRate = o.rate, o.uploadRate, 0, 0
	if c.Model == pacing.DevToolsModel {
		c.Latency, o.latency, c.RTT = o.latency, 0, 0
		c.Queue = pacing.Queue{} // Chrome's throttling has none
	} else if !d.queueSet {
		c.Queue = defaultQueue
	}
	n.key, o.share = o.share, ""
	if !d.chunkSet {
		// What the link carries at once, so that every piece is flushed
		// as it arrives.
		o.chunk = pacing.ChunkSize{N: pacing.PieceSize(c.Down), Unit: pacing.Bytes}
	}
	o.paced, o.untouched = true, true
	o.net = &n
	return o
}

// parseLoss parses "2%" or "2% burst 3": the share of packets lost, and the
// mean length of a burst of losses.
func parseLoss(d *draft, v string) error {
	c := &d.net.cond
	share, burst, hasBurst := strings.Cut(v, "burst")
	var err error
	if c.Loss, err = parsePercent(strings.TrimSpace(share)); err != nil {
		return fmt.Errorf("%q: %s (want e.g. 2%% or 2%% burst 3)", v, strings.TrimPrefix(err.Error(), strconv.Quote(strings.TrimSpace(share))+": "))
	}
	if c.Loss >= 100 {
		return fmt.Errorf("%q: must be below 100%%", v)
	}
	c.Loss /= 100
	c.LossBurst = 0
	if hasBurst {
		n, err := strconv.ParseFloat(strings.TrimSpace(burst), 64)
		if err != nil || !(n >= 1 && n <= 1000) {
			return fmt.Errorf("%q: the burst is a mean count of packets from 1 to 1000 (want e.g. 2%% burst 3)", v)
		}
		c.LossBurst = n
	}
	return nil
}

// defaultQueue is a network's bottleneck queue when queue is not set: the
// reference link's, and Linux's and netem's default length.
var defaultQueue = pacing.Queue{Packets: 1000}

// parseQueue parses "1000 packets", a size ("1MB"), a duration ("2s") of the
// way's rate, or "fair": no queue, a fair share for every stream.
func parseQueue(d *draft, v string) error {
	d.queueSet = true
	q := &d.net.cond.Queue
	*q = pacing.Queue{}
	if strings.EqualFold(v, "fair") {
		return nil
	}
	num, unit, _ := strings.Cut(v, " ")
	if strings.EqualFold(unit, "packets") || strings.EqualFold(unit, "packet") {
		n, err := strconv.Atoi(num)
		if err != nil || n <= 0 || n > 1<<20 {
			return fmt.Errorf("%q: a count of packets is a whole number from 1 to 1048576 (want e.g. 1000 packets)", v)
		}
		q.Packets = n
		return nil
	}
	if dur, err := caddy.ParseDuration(v); err == nil && strings.IndexFunc(v, func(r rune) bool { return r >= 'a' && r <= 'z' }) >= 0 {
		if dur <= 0 {
			return fmt.Errorf("%q: must be above zero", v)
		}
		q.Delay = dur
		return nil
	}
	size, err := pacing.ParseSize(v)
	if err != nil {
		return fmt.Errorf("%q: not a queue (want a count of packets, a size or a duration, such as 1000 packets, 1MB or 2s, or fair)", v)
	}
	if size <= 0 {
		return fmt.Errorf("%q: must be above zero", v)
	}
	q.Bytes = size
	return nil
}

// parseOutage parses "5s every 60s": for 5 s of every 60 s, the link
// carries nothing.
func parseOutage(d *draft, v string) error {
	c := &d.net.cond
	dur, every, ok := strings.Cut(v, "every")
	if !ok {
		return fmt.Errorf("%q: want <duration> every <duration>, e.g. 2s every 30s", v)
	}
	var err error
	if c.Outage, err = parseDuration(strings.TrimSpace(dur)); err != nil {
		return fmt.Errorf("%q: %w", v, err)
	}
	if c.OutageEvery, err = parseDuration(strings.TrimSpace(every)); err != nil {
		return fmt.Errorf("%q: %w", v, err)
	}
	if c.Outage <= 0 || c.Outage >= c.OutageEvery {
		return fmt.Errorf("%q: an outage must last more than 0 and less than its period", v)
	}
	return nil
}

// staticValue is how values resolve when the config loads: a value with a
// placeholder is unknown until a request comes, so it counts as unset.
func staticValue(v string) string {
	if strings.Contains(v, "{") {
		return ""
	}
	return v
}

// check refuses options that contradict each other, whatever their
// placeholders resolve to.
func (v optionValues) check() error {
	network := v.mayBeNetwork()
	if v["share"] != "" && v["rate"] == "" && !network {
		return fmt.Errorf("share %q: shares a rate or a network, but none of rate, %s is set", v["share"], optionNames(makesNetwork, " and "))
	}
	if v["rtt"] != "" && strings.EqualFold(v["model"], "devtools") {
		return fmt.Errorf("rtt %q: a round trip of the link model, but model is devtools (which has latency instead)", v["rtt"])
	}
	if ct := strings.ToLower(v["content_type"]); network && ct != "" && ct != contentTypeAuto && ct != contentTypeKeep {
		return fmt.Errorf("content_type %q: a network never changes a response, and %s sets one (want auto or keep)", v["content_type"], v.networkMaker())
	}
	for i := range optionTable {
		if opt := &optionTable[i]; opt.is(networkOnly) && v[opt.name] != "" && !network {
			return fmt.Errorf("%s %q: works on a network, but none of %s is set", opt.name, v[opt.name], optionNames(makesNetwork, " and "))
		}
	}
	if v["name"] != "" {
		for i := range optionTable {
			// share keys the links, which may be one per request's
			// cookie or header: a link per test.
			if opt := &optionTable[i]; opt.name != "share" && strings.Contains(v[opt.name], "{") {
				return fmt.Errorf("%s %q: a named network's options are changed live through the admin API, not per request (name %q)", opt.name, v[opt.name], v["name"])
			}
		}
	}
	for _, name := range []string{"trace", "upload_trace"} {
		if strings.Contains(v[name], "{") {
			return fmt.Errorf("%s %q: a file, not a placeholder: a file a request could name would let any client read the server's files", name, v[name])
		}
	}
	if v["loss"] != "" && strings.EqualFold(v["model"], "devtools") {
		return fmt.Errorf("loss %q: packets are lost on the link model's link, but model is devtools", v["loss"])
	}
	if v["queue"] != "" && strings.EqualFold(v["model"], "devtools") {
		return fmt.Errorf("queue %q: a queue is the link model's, but model is devtools (Chrome's throttling has none)", v["queue"])
	}
	return nil
}

// networkMaker names the option that makes a network, for errors.
func (v optionValues) networkMaker() string {
	for i := range optionTable {
		if opt := &optionTable[i]; opt.is(makesNetwork) && v[opt.name] != "" {
			return fmt.Sprintf("%s %q", opt.name, v[opt.name])
		}
	}
	return ""
}

// A preset is a network: the link behind one of Chrome DevTools' profiles,
// and the numbers DevTools applies for it, which scale the link's latency
// by 5, 3.75 or 2.75 and its throughput by 0.8 or 0.9.
type preset struct {
	name         string
	rtt          time.Duration // link: round-trip time
	down, up     float64       // link: bytes per second
	latency      time.Duration // devtools: least time to a response's head
	dtDown, dtUp float64       // devtools: bytes per second
	offline      bool          // a link that carries nothing
}

var presets = map[string]*preset{
	"3g":      {"3g", 400 * time.Millisecond, 500e3 / 8, 500e3 / 8, 2000 * time.Millisecond, 50000, 50000, false},
	"slow-4g": {"slow-4g", 150 * time.Millisecond, 1.6e6 / 8, 750e3 / 8, 562500 * time.Microsecond, 180000, 84375, false},
	"fast-4g": {"fast-4g", 60 * time.Millisecond, 9e6 / 8, 1.5e6 / 8, 165 * time.Millisecond, 1012500, 168750, false},
	"offline": {name: "offline", offline: true},
}

func init() {
	p3g, slow4g := *presets["3g"], *presets["slow-4g"]
	p3g.name, slow4g.name = "slow-3g", "fast-3g"
	presets["slow-3g"], presets["fast-3g"] = &p3g, &slow4g
}

const presetNames = "3g, slow-3g, slow-4g, fast-3g, fast-4g or offline"

func parsePreset(d *draft, v string) error {
	p, ok := presets[strings.ToLower(v)]
	if !ok {
		if near := nearestPreset(v); near != "" {
			return fmt.Errorf("%q: unknown preset (did you mean %s?)", v, near)
		}
		return fmt.Errorf("%q: unknown preset (want %s)", v, presetNames)
	}
	d.preset, d.netMade = p, true
	return nil
}

// nearestPreset is the preset that v is a slip of the keyboard away from
// (slow4g, fast-4G, 3gg), or "" if none is near: at most two edits, and
// fewer than a third of v's letters, so that 6g is not taken for 3g.
func nearestPreset(v string) string {
	v = strings.ToLower(v)
	best, bestDistance := "", 3
	for name := range presets {
		if d := editDistance(v, name); d < bestDistance && 3*d < len(v) || d == bestDistance && name < best {
			best, bestDistance = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	row := make([]int, len(b)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(a); i++ {
		diagonal := row[0]
		row[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			diagonal, row[j] = row[j], min(row[j]+1, row[j-1]+1, diagonal+cost)
		}
	}
	return row[len(b)]
}

func parseModel(d *draft, v string) error {
	switch strings.ToLower(v) {
	case "link":
		d.net.cond.Model = pacing.LinkModel
	case "devtools":
		d.net.cond.Model = pacing.DevToolsModel
	default:
		return fmt.Errorf("%q: unknown model (want link or devtools)", v)
	}
	d.netMade = true
	return nil
}

func parseDuration(v string) (time.Duration, error) {
	d, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q: not a duration (want e.g. 100ms, 1.5s, 2m)", v)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q: must not be negative", v)
	}
	return d, nil
}

// parsePercent parses "20%" or "20", from 0 to 100.
func parsePercent(v string) (float64, error) {
	num := strings.TrimSpace(strings.TrimSuffix(v, "%"))
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || strings.Trim(num, "0123456789.") != "" {
		return 0, fmt.Errorf("%q: not a percentage (want a number from 0 to 100, e.g. 20%%)", v)
	}
	if f < 0 || f > 100 {
		return 0, fmt.Errorf("%q: must be from 0 to 100", v)
	}
	return f, nil
}

func parseContentType(d *draft, v string) error {
	switch v {
	case contentTypeAuto, contentTypeKeep:
		d.o.contentType = v
		return nil
	}
	if _, _, err := mime.ParseMediaType(v); err != nil || !strings.Contains(v, "/") {
		return fmt.Errorf("%q: not a media type (want auto, keep, or a media type such as application/octet-stream)", v)
	}
	d.o.contentType = v
	return nil
}

// resolver returns how values resolve for r: through its placeholders,
// unknown ones empty.
func resolver(r *http.Request) func(string) string {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		repl = caddy.NewReplacer()
	}
	return func(v string) string { return repl.ReplaceAll(v, "") }
}
