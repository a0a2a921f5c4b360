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
//		rtt          <duration>     # a network's round trip
//		model        link|devtools  # how a network's numbers apply; default link
//		trace        <down-file> [<up-file>]   # a network's capacity over time
//		loss         <percent> [burst <n>]     # a network's packets lost
//		outage       <duration> every <duration>
//		queue        <n> packets|<size>|<duration>|fair   # a network's bottleneck queue
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
	case len(args) >= 1 && (isPreset(args[0]) || nearestPreset(args[0]) != ""):
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
			return d.Errf("unrecognized pace subdirective %q (want %s or match)", name, optionNames(0, ", "))
		}
		field := opt.field(p)
		if *field != "" {
			return d.Errf("%s is given both on the pace line and in its block", name)
		}
		args := d.RemainingArgs()
		if len(args) == 0 || len(args) > opt.args {
			return d.Errf("%s takes %s, got %d arguments: %q", name, opt.what, len(args), strings.Join(args, " "))
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
	var scratch draft
	return opt.apply(&scratch, *opt.field(p), staticValue)
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

func isPreset(s string) bool {
	_, ok := presets[strings.ToLower(s)]
	return ok
}

func isNumber(s string) bool {
	return s != "" && strings.Trim(s, "0123456789.") == ""
}

func isWord(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }) < 0
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
