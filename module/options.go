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

// options are a Handler's settings for one request, parsed.
type options struct {
	chunk       pacing.ChunkSize
	chunkSet    bool // chunk was given (or is the bare directive's)
	interval    time.Duration
	rate        float64 // bytes per second; 0 for none
	latency     time.Duration
	jitter      float64 // 0.2 for 20%
	after       int64
	contentType string // contentTypeAuto, contentTypeKeep or a media type
	share       string // the key, resolved; "" for none
	percent     float64
	maxDuration time.Duration
	uploadRate  float64

	// A network: a preset, rtt or model makes one (see network).
	model    pacing.Model
	modelSet bool
	preset   string // its name, lower case; "" for none
	rtt      time.Duration
	rttSet   bool
	// What a network's link varies and fails with (see network).
	downTrace, upTrace  *pacing.Trace
	loss, lossBurst     float64
	outage, outageEvery time.Duration
	reset               float64 // the share of paced responses cut, 0.1 for 10%
	offline             bool    // the preset offline: the link carries nothing
}

const (
	contentTypeAuto = "auto"
	contentTypeKeep = "keep"
)

// defaultInterval is the pause of the bare `pace` directive.
const defaultInterval = 100 * time.Millisecond

// pacesBody reports whether the response body is paced: cut in chunks and
// flushed, and slowed if an interval or a rate is set.
func (o *options) pacesBody() bool {
	return o.chunkSet || o.interval > 0 || o.rate > 0 || o.isNetwork()
}

// wrapsResponse reports whether the response needs a wrapper at all: to
// pace its body or to hold its head.
func (o *options) wrapsResponse() bool {
	return o.pacesBody() || o.latency > 0
}

// isNetwork reports whether the options describe a network: a client's
// link, which all its responses and uploads go through, rather than a pace
// for each response.
func (o *options) isNetwork() bool {
	return o.preset != "" || o.rttSet || o.modelSet
}

// network is the link the options describe; only if isNetwork. rate and
// upload_rate are its rates; under the link model rtt its round trip, under
// the devtools model latency the least time to a response's head.
func (o *options) network() pacing.Network {
	n := pacing.Network{Model: o.model, Down: o.rate, Up: o.uploadRate,
		DownTrace: o.downTrace, UpTrace: o.upTrace, Loss: o.loss, LossBurst: o.lossBurst,
		Outage: o.outage, OutageEvery: o.outageEvery, Offline: o.offline}
	if o.model == pacing.DevToolsModel {
		n.Latency = o.latency
	} else {
		n.RTT = o.rtt
	}
	return n
}

// fillChunk sets the chunk when none was given: on a network, what the link
// carries at once, so that every piece is flushed as it arrives; under a
// rate, what keeps gaps short; otherwise 1 KiB.
func (o *options) fillChunk() {
	if o.chunkSet {
		return
	}
	switch {
	case o.isNetwork():
		o.chunk = pacing.ChunkSize{N: pacing.PieceSize(o.rate), Unit: pacing.Bytes}
	case o.rate > 0:
		o.chunk = pacing.RateChunk(o.rate)
	default:
		o.chunk = pacing.DefaultChunk
	}
}

// An option is one setting of the Handler: its name in the Caddyfile and in
// JSON, where its value is, and how it is parsed into options.
type option struct {
	name  string
	field func(*Handler) *string
	parse func(o *options, v string) error
}

// optionTable lists the options in the order they are applied: the model,
// which says what a preset's numbers are, then a preset, so that any option
// given beside it overrides its part of it.
var optionTable = []option{
	{"model", func(h *Handler) *string { return &h.Model }, parseModel},
	{"preset", func(h *Handler) *string { return &h.Preset }, parsePreset},
	{"rtt", func(h *Handler) *string { return &h.RTT }, func(o *options, v string) (err error) {
		o.rtt, err = parseDuration(v)
		o.rttSet = true
		return err
	}},
	{"chunk", func(h *Handler) *string { return &h.Chunk }, func(o *options, v string) (err error) {
		o.chunk, err = pacing.ParseChunk(v)
		o.chunkSet = true
		return err
	}},
	{"interval", func(h *Handler) *string { return &h.Interval }, func(o *options, v string) (err error) {
		o.interval, err = parseDuration(v)
		return err
	}},
	{"rate", func(h *Handler) *string { return &h.Rate }, func(o *options, v string) (err error) {
		o.rate, err = pacing.ParseRate(v)
		return err
	}},
	{"latency", func(h *Handler) *string { return &h.Latency }, func(o *options, v string) (err error) {
		o.latency, err = parseDuration(v)
		return err
	}},
	{"jitter", func(h *Handler) *string { return &h.Jitter }, func(o *options, v string) (err error) {
		o.jitter, err = parsePercent(v)
		o.jitter /= 100
		return err
	}},
	{"after", func(h *Handler) *string { return &h.After }, func(o *options, v string) (err error) {
		o.after, err = pacing.ParseSize(v)
		return err
	}},
	{"content_type", func(h *Handler) *string { return &h.ContentType }, parseContentType},
	{"share", func(h *Handler) *string { return &h.Share }, func(o *options, v string) error {
		o.share = v
		return nil
	}},
	{"percent", func(h *Handler) *string { return &h.Percent }, func(o *options, v string) (err error) {
		o.percent, err = parsePercent(v)
		return err
	}},
	{"max_duration", func(h *Handler) *string { return &h.MaxDuration }, func(o *options, v string) (err error) {
		o.maxDuration, err = parseDuration(v)
		if err == nil && o.maxDuration == 0 {
			err = fmt.Errorf("%q: must be above zero", v)
		}
		return err
	}},
	{"upload_rate", func(h *Handler) *string { return &h.UploadRate }, func(o *options, v string) (err error) {
		o.uploadRate, err = pacing.ParseRate(v)
		return err
	}},
	{"trace", func(h *Handler) *string { return &h.Trace }, func(o *options, v string) (err error) {
		o.downTrace, err = loadTrace(v)
		return err
	}},
	{"upload_trace", func(h *Handler) *string { return &h.UploadTrace }, func(o *options, v string) (err error) {
		o.upTrace, err = loadTrace(v)
		return err
	}},
	{"loss", func(h *Handler) *string { return &h.Loss }, parseLoss},
	{"outage", func(h *Handler) *string { return &h.Outage }, parseOutage},
	{"reset", func(h *Handler) *string { return &h.Reset }, func(o *options, v string) (err error) {
		o.reset, err = parsePercent(v)
		o.reset /= 100
		return err
	}},
	{"name", func(h *Handler) *string { return &h.Name }, func(o *options, v string) error {
		if !validName.MatchString(v) {
			return fmt.Errorf("%q: a network's name is 1 to 64 letters, digits, dots, hyphens or underscores", v)
		}
		return nil
	}},
}

// networkOnly are the options that only a network has: what its link
// varies and fails with.
var networkOnly = []string{"trace", "upload_trace", "loss", "outage", "reset", "name"}

// parseLoss parses "2%" or "2% burst 3": the share of packets lost, and the
// mean length of a burst of losses.
func parseLoss(o *options, v string) error {
	share, burst, hasBurst := strings.Cut(v, "burst")
	var err error
	if o.loss, err = parsePercent(strings.TrimSpace(share)); err != nil {
		return fmt.Errorf("%q: %s (want e.g. 2%% or 2%% burst 3)", v, strings.TrimPrefix(err.Error(), strconv.Quote(strings.TrimSpace(share))+": "))
	}
	if o.loss >= 100 {
		return fmt.Errorf("%q: must be below 100%%", v)
	}
	o.loss /= 100
	o.lossBurst = 0
	if hasBurst {
		n, err := strconv.ParseFloat(strings.TrimSpace(burst), 64)
		if err != nil || !(n >= 1 && n <= 1000) {
			return fmt.Errorf("%q: the burst is a mean count of packets from 1 to 1000 (want e.g. 2%% burst 3)", v)
		}
		o.lossBurst = n
	}
	return nil
}

// parseOutage parses "5s every 60s": for 5 s of every 60 s, the link
// carries nothing.
func parseOutage(o *options, v string) error {
	d, every, ok := strings.Cut(v, "every")
	if !ok {
		return fmt.Errorf("%q: want <duration> every <duration>, e.g. 2s every 30s", v)
	}
	var err error
	if o.outage, err = parseDuration(strings.TrimSpace(d)); err != nil {
		return fmt.Errorf("%q: %w", v, err)
	}
	if o.outageEvery, err = parseDuration(strings.TrimSpace(every)); err != nil {
		return fmt.Errorf("%q: %w", v, err)
	}
	if o.outage <= 0 || o.outage >= o.outageEvery {
		return fmt.Errorf("%q: an outage must last more than 0 and less than its period", v)
	}
	return nil
}

// timingOptions are the options that say what to slow; with none of them
// configured, the directive is the bare `pace`, which paces 1 KiB every
// 100 ms.
var timingOptions = []string{"model", "preset", "rtt", "chunk", "interval", "rate", "latency", "upload_rate"}

func lookupOption(name string) (option, bool) {
	for _, opt := range optionTable {
		if opt.name == name {
			return opt, true
		}
	}
	return option{}, false
}

// parse parses the options, each value passed through resolve first; a
// value that resolves empty leaves its option unset. The error names the
// option, the value and what is accepted.
func (h *Handler) parse(resolve func(string) string) (options, error) {
	o := h.defaults()
	for _, opt := range optionTable {
		if err := opt.apply(h, &o, resolve); err != nil {
			return o, err
		}
	}
	o.fillChunk()
	return o, nil
}

// apply parses the option's value, resolved, into o.
func (opt option) apply(h *Handler, o *options, resolve func(string) string) error {
	v := strings.TrimSpace(resolve(*opt.field(h)))
	if v == "" {
		return nil
	}
	if err := opt.parse(o, v); err != nil {
		return fmt.Errorf("%s %w", opt.name, err)
	}
	return nil
}

// defaults are the options before any is applied.
func (h *Handler) defaults() options {
	o := options{contentType: contentTypeAuto, percent: 100}
	if h.isBare() {
		o.chunk, o.chunkSet, o.interval = pacing.DefaultChunk, true, defaultInterval
	}
	return o
}

func (h *Handler) isBare() bool {
	for _, name := range timingOptions {
		if opt, _ := lookupOption(name); *opt.field(h) != "" {
			return false
		}
	}
	return true
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
func (h *Handler) check() error {
	network := h.Preset != "" || h.RTT != "" || h.Model != ""
	if h.Share != "" && h.Rate == "" && !network {
		return fmt.Errorf("share %q: shares a rate or a network, but none of rate, preset, rtt and model is set", h.Share)
	}
	if h.RTT != "" && strings.EqualFold(h.Model, "devtools") {
		return fmt.Errorf("rtt %q: a round trip of the link model, but model is devtools (which has latency instead)", h.RTT)
	}
	if ct := strings.ToLower(h.ContentType); network && ct != "" && ct != contentTypeAuto && ct != contentTypeKeep {
		return fmt.Errorf("content_type %q: a network never changes a response, and %s sets one (want auto or keep)", h.ContentType, networkOptionName(h))
	}
	for _, name := range networkOnly {
		if opt, _ := lookupOption(name); *opt.field(h) != "" && !network {
			return fmt.Errorf("%s %q: works on a network, but none of preset, rtt and model is set", name, *opt.field(h))
		}
	}
	if h.Name != "" {
		for _, opt := range optionTable {
			if v := *opt.field(h); strings.Contains(v, "{") {
				return fmt.Errorf("%s %q: a named network's options are changed live through the admin API, not per request (name %q)", opt.name, v, h.Name)
			}
		}
	}
	for _, file := range []struct{ name, path string }{{"trace", h.Trace}, {"upload_trace", h.UploadTrace}} {
		if strings.Contains(file.path, "{") {
			return fmt.Errorf("%s %q: a file, not a placeholder: a file a request could name would let any client read the server's files", file.name, file.path)
		}
	}
	if h.Loss != "" && strings.EqualFold(h.Model, "devtools") {
		return fmt.Errorf("loss %q: packets are lost on the link model's link, but model is devtools", h.Loss)
	}
	return nil
}

// networkOptionName names the option that makes h a network, for errors.
func networkOptionName(h *Handler) string {
	switch {
	case h.Preset != "":
		return fmt.Sprintf("preset %q", h.Preset)
	case h.RTT != "":
		return fmt.Sprintf("rtt %q", h.RTT)
	}
	return fmt.Sprintf("model %q", h.Model)
}

// A preset is a network: the link behind one of Chrome DevTools' profiles,
// and the numbers DevTools applies for it, which scale the link's latency
// by 5, 3.75 or 2.75 and its throughput by 0.8 or 0.9.
type preset struct {
	rtt          time.Duration // link: round-trip time
	down, up     float64       // link: bytes per second
	latency      time.Duration // devtools: least time to a response's head
	dtDown, dtUp float64       // devtools: bytes per second
}

var presets = map[string]*preset{
	"3g":      {400 * time.Millisecond, 500e3 / 8, 500e3 / 8, 2000 * time.Millisecond, 50000, 50000},
	"slow-4g": {150 * time.Millisecond, 1.6e6 / 8, 750e3 / 8, 562500 * time.Microsecond, 180000, 84375},
	"fast-4g": {60 * time.Millisecond, 9e6 / 8, 1.5e6 / 8, 165 * time.Millisecond, 1012500, 168750},
}

func init() {
	presets["slow-3g"], presets["fast-3g"] = presets["3g"], presets["slow-4g"]
}

const presetNames = "3g, slow-3g, slow-4g, fast-3g, fast-4g or offline"

func parsePreset(o *options, v string) error {
	if strings.EqualFold(v, "offline") { // a link that carries nothing
		o.preset, o.offline = "offline", true
		return nil
	}
	p, ok := presets[strings.ToLower(v)]
	if !ok {
		return fmt.Errorf("%q: unknown preset (want %s)", v, presetNames)
	}
	o.preset = strings.ToLower(v)
	if o.model == pacing.DevToolsModel {
		o.rate, o.uploadRate, o.latency = p.dtDown, p.dtUp, p.latency
	} else {
		o.rate, o.uploadRate, o.rtt = p.down, p.up, p.rtt
	}
	return nil
}

func parseModel(o *options, v string) error {
	switch strings.ToLower(v) {
	case "link":
		o.model = pacing.LinkModel
	case "devtools":
		o.model = pacing.DevToolsModel
	default:
		return fmt.Errorf("%q: unknown model (want link or devtools)", v)
	}
	o.modelSet = true
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

func parseContentType(o *options, v string) error {
	switch v {
	case contentTypeAuto, contentTypeKeep:
		o.contentType = v
		return nil
	}
	if _, _, err := mime.ParseMediaType(v); err != nil || !strings.Contains(v, "/") {
		return fmt.Errorf("%q: not a media type (want auto, keep, or a media type such as application/octet-stream)", v)
	}
	o.contentType = v
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
