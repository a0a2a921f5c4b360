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
//	pace [<matcher>] [<chunk> [<interval>]] {
//		chunk        <n>[<unit>]          # bytes (or a size: 1KiB, 1KB) or chars; default 1KiB
//		interval     <duration>           # start of one chunk to the start of the next
//		content_type auto|keep|<media-type>  # default auto
//	}
//
// A chunk is written `5chars` or `5 chars`, `1KiB` or `1 KiB`. With neither
// chunk nor interval, `pace` paces 1KiB every 100ms.
func (p *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name

	args := d.RemainingArgs()
	if len(args) >= 2 && isNumber(args[0]) && isWord(args[1]) {
		args = append([]string{args[0] + " " + args[1]}, args[2:]...)
	}
	switch len(args) {
	case 2:
		p.Interval = args[1]
		fallthrough
	case 1:
		p.Chunk = args[0]
	case 0:
	default:
		return d.Errf("too many arguments to pace: %q (want [<chunk> [<interval>]])", strings.Join(args, " "))
	}
	// Refuse bad values when the config is adapted, not only when it loads,
	// and at the line that holds them.
	if _, err := p.parse(); err != nil {
		return d.Err(err.Error())
	}

	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		args := d.RemainingArgs()
		if seen[name] {
			return d.Errf("%s is given twice", name)
		}
		seen[name] = true
		var field *string
		switch name {
		case "chunk":
			field = &p.Chunk
		case "interval":
			field = &p.Interval
		case "content_type":
			field = &p.ContentType
		default:
			return d.Errf("unrecognized pace subdirective %q (want chunk, interval or content_type)", name)
		}
		if *field != "" {
			return d.Errf("%s is given both on the pace line and in its block", name)
		}
		maxArgs := 1
		switch name {
		case "chunk":
			maxArgs = 2 // chunk 5 chars
		case "content_type":
			maxArgs = 3 // content_type text/plain; charset=utf-8
		}
		if len(args) == 0 || len(args) > maxArgs {
			return d.Errf("%s takes %s, got %d arguments: %q", name, argsWanted[name], len(args), strings.Join(args, " "))
		}
		*field = strings.Join(args, " ")
		if _, err := p.parse(); err != nil {
			return d.Err(err.Error())
		}
	}
	return nil
}

var argsWanted = map[string]string{
	"chunk":        "a count and a unit (5chars, 1KiB, 512 bytes)",
	"interval":     "one duration",
	"content_type": "auto, keep or a media type",
}

func isNumber(s string) bool {
	return s != "" && strings.Trim(s, "0123456789.") == ""
}

func isWord(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }) < 0
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
