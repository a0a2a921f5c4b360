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
	return o.chunkSet || o.interval > 0 || o.rate > 0
}

// wrapsResponse reports whether the response needs a wrapper at all: to
// pace its body or to hold its head.
func (o *options) wrapsResponse() bool {
	return o.pacesBody() || o.latency > 0
}

// fillChunk sets the chunk when none was given: under a rate, what keeps
// gaps short; otherwise 1 KiB.
func (o *options) fillChunk() {
	if o.chunkSet {
		return
	}
	o.chunk = pacing.DefaultChunk
	if o.rate > 0 {
		o.chunk = pacing.RateChunk(o.rate)
	}
}

// An option is one setting of the Handler: its name in the Caddyfile and in
// JSON, where its value is, and how it is parsed into options.
type option struct {
	name  string
	field func(*Handler) *string
	parse func(o *options, v string) error
}

// optionTable lists the options in the order they are applied: a preset
// first, so that any option given beside it overrides its part of it.
var optionTable = []option{
	{"preset", func(h *Handler) *string { return &h.Preset }, parsePreset},
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
}

// timingOptions are the options that say what to slow; with none of them
// configured, the directive is the bare `pace`, which paces 1 KiB every
// 100 ms.
var timingOptions = []string{"preset", "chunk", "interval", "rate", "latency", "upload_rate"}

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
	if h.Share != "" && h.Rate == "" && h.Preset == "" {
		return fmt.Errorf("share %q: shares a rate, but neither rate nor preset is set", h.Share)
	}
	return nil
}

// A preset is a network profile: Chrome DevTools' numbers for download,
// upload and latency.
type preset struct {
	download, upload float64 // bytes per second
	latency          time.Duration
}

var presets = map[string]preset{
	"3g":      {50000, 50000, 2000 * time.Millisecond},
	"slow-3g": {50000, 50000, 2000 * time.Millisecond},
	"slow-4g": {180000, 84375, 562500 * time.Microsecond},
	"fast-3g": {180000, 84375, 562500 * time.Microsecond},
	"fast-4g": {1012500, 168750, 165 * time.Millisecond},
}

func parsePreset(o *options, v string) error {
	p, ok := presets[strings.ToLower(v)]
	if !ok {
		return fmt.Errorf("%q: unknown preset (want 3g, slow-3g, slow-4g, fast-3g or fast-4g)", v)
	}
	o.rate, o.uploadRate, o.latency = p.download, p.upload, p.latency
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
