package pace

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("pace", parseCaddyfile)
	// Inside encode, so that pace sees the body uncompressed and encode
	// flushes its compressor at every chunk; outside the handlers that write
	// responses.
	httpcaddyfile.RegisterDirectiveOrder("pace", httpcaddyfile.After, "encode")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	p := new(Handler)
	err := p.UnmarshalCaddyfile(h.Dispenser)
	return p, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	pace [<matcher>] [<preset> | <chunk> [<interval>]] {
//		preset       3g|slow-3g|slow-4g|fast-3g|fast-4g|offline   # a network: a client's link
//		model        link|devtools  # how a network's numbers apply; default link
//		rtt          <duration>     # a network's round trip
//		trace        <down-file> [<up-file>]   # a network's capacity over time
//		loss         <percent> [burst <n>]     # a network's packets lost
//		outage       <duration> every <duration>
//		reset        <percent>      # cut this share of responses
//		name         <name>         # change the network live, through the admin API
//		chunk        <n> [bytes|chars|words|lines|events]   # default 1KiB
//		interval     <duration>     # start of one chunk to the start of the next
//		rate         <size>         # bytes per second: 64KiB, 1MB, 500kbit
//		latency      <duration>     # hold the response head this long
//		jitter       <percent>      # random ± variation of chunk gaps: 20%
//		after        <size>         # the first <size> bytes go out unpaced
//		content_type auto|keep|<media-type>   # default auto
//		share        <key>          # one rate for all responses with this key
//		percent      <0-100>        # pace only this share of requests
//		max_duration <duration>     # past it, the rest goes out unpaced
//		upload_rate  <size>         # pace reading the request body too
//		match {                     # pace only responses that match
//			status <codes...>
//			header <field> [<value>]
//		}
//	}
//
// A chunk is written `5chars` or `5 chars`, `1KiB` or `1 KiB`. The bare
// `pace` paces 1KiB every 100ms. Every value may hold placeholders.
func (p *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name

	args := d.RemainingArgs()
	if len(args) >= 2 && isNumber(args[0]) && isWord(args[1]) {
		args = append([]string{args[0] + " " + args[1]}, args[2:]...)
	}
	switch {
	case len(args) >= 1 && isPreset(args[0]):
		if len(args) > 1 {
			return d.Errf("a preset takes nothing after it on the pace line: %q (set other options in the block)", strings.Join(args, " "))
		}
		p.Preset = args[0]
	case len(args) == 2:
		p.Chunk, p.Interval = args[0], args[1]
	case len(args) == 1:
		p.Chunk = args[0]
	case len(args) > 2:
		return d.Errf("too many arguments to pace: %q (want [<preset> | <chunk> [<interval>]])", strings.Join(args, " "))
	}
	// Refuse bad values when the config is adapted, not only when it loads,
	// and at the line that holds them.
	for _, name := range []string{"preset", "chunk", "interval"} {
		if err := checkValue(p, name); err != nil {
			return d.Err(err.Error())
		}
	}

	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return d.Errf("%s is given twice", name)
		}
		seen[name] = true
		if name == "match" {
			if err := p.unmarshalMatch(d); err != nil {
				return err
			}
			continue
		}
		opt, ok := lookupOption(name)
		if !ok {
			return d.Errf("unrecognized pace subdirective %q (want preset, model, rtt, trace, loss, outage, reset, name, chunk, interval, rate, latency, jitter, after, content_type, share, percent, max_duration, upload_rate or match)", name)
		}
		field := opt.field(p)
		if *field != "" {
			return d.Errf("%s is given both on the pace line and in its block", name)
		}
		args := d.RemainingArgs()
		if want := argsWanted[name]; len(args) == 0 || len(args) > want.most {
			return d.Errf("%s takes %s, got %d arguments: %q", name, want.what, len(args), strings.Join(args, " "))
		}
		*field = strings.Join(args, " ")
		if name == "trace" && len(args) == 2 { // trace <down> <up>
			p.Trace, p.UploadTrace = args[0], args[1]
			seen["upload_trace"] = true
			if err := checkValue(p, "upload_trace"); err != nil {
				return d.Err(err.Error())
			}
		}
		if err := checkValue(p, name); err != nil {
			return d.Err(err.Error())
		}
	}
	if err := p.check(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// checkValue parses one option as the config loads it, so that a bad value
// is refused at the line that holds it.
func checkValue(p *Handler, name string) error {
	opt, _ := lookupOption(name)
	var scratch options
	return opt.apply(p, &scratch, staticValue)
}

// unmarshalMatch parses `match { status …; header … }` (or the one-line
// `match status 200`) with Caddy's own response matcher syntax.
func (p *Handler) unmarshalMatch(d *caddyfile.Dispenser) error {
	matchers := map[string]caddyhttp.ResponseMatcher{}
	if err := caddyhttp.ParseNamedResponseMatcher(d.NewFromNextSegment(), matchers); err != nil {
		return err
	}
	m := matchers["match"]
	if m.StatusCode == nil && m.Headers == nil {
		return d.Errf("match needs status or header (want match { status <codes...>; header <field> [<value>] })")
	}
	p.Match = &m
	return nil
}

// argsWanted is how many arguments each subdirective takes, at most, and
// what they are: sizes may be written `64 KiB`, chunks `5 chars`, and media
// types `text/plain; charset=utf-8`.
var argsWanted = map[string]struct {
	most int
	what string
}{
	"preset":       {1, "a preset name (3g, slow-3g, slow-4g, fast-3g, fast-4g, offline)"},
	"model":        {1, "link or devtools"},
	"rtt":          {1, "one duration"},
	"chunk":        {2, "a count and a unit (5chars, 3 words, 1KiB, 512 bytes)"},
	"interval":     {1, "one duration"},
	"rate":         {2, "a rate (64KiB, 1MB, 500kbit)"},
	"latency":      {1, "one duration"},
	"jitter":       {1, "a percentage (20%)"},
	"after":        {2, "a size (1MiB)"},
	"content_type": {3, "auto, keep or a media type"},
	"share":        {1, "one key, such as {remote_host}"},
	"percent":      {1, "a number from 0 to 100"},
	"max_duration": {1, "one duration"},
	"upload_rate":  {2, "a rate (64KiB, 1MB, 500kbit)"},
	"trace":        {2, "a trace file for the way down, and optionally one for the way up"},
	"upload_trace": {1, "one trace file"},
	"loss":         {3, "a percentage, and optionally burst <n> (2%, 2% burst 3)"},
	"outage":       {3, "<duration> every <duration> (2s every 30s)"},
	"reset":        {1, "a percentage (10%)"},
	"name":         {1, "one name"},
}

func isPreset(s string) bool {
	_, ok := presets[strings.ToLower(s)]
	return ok || strings.EqualFold(s, "offline")
}

func isNumber(s string) bool {
	return s != "" && strings.Trim(s, "0123456789.") == ""
}

func isWord(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }) < 0
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
