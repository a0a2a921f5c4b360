// Package pace is the Caddy module caddy-pace: an HTTP handler that paces the
// response body of whatever handler comes next (reverse_proxy, file_server,
// respond, templates…), re-emitting it in chunks with a flush after each.
//
// Blank-import it into a Caddy build, or build with
// xcaddy build --with github.com/caddy-pace/caddy-pace/module.
package pace

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-pace/caddy-pace/pacing"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler paces the response body that the next handler writes: it sends it
// on in chunks, each flushed through every wrapper down to the connection,
// the start of each chunk one interval after the start of the one before.
// Bytes out are exactly bytes in; only the timing changes.
//
// Responses without a body (to HEAD, 1xx, 204, 304) and protocol upgrades
// (WebSocket) pass through untouched. Paced responses carry
// `X-Content-Type-Options: nosniff` and `X-Accel-Buffering: no`, so that
// neither a browser's type sniffing nor an nginx in front holds them back.
//
// With neither chunk nor interval set, the handler paces 1 KiB every 100 ms.
type Handler struct {
	// How much of the body goes out at once, as a count and a unit: `5chars`,
	// `1 char`, `1KiB`, `1.5 KB`, `512 bytes`. Sizes take go-humanize's units
	// (KiB = 1024 bytes, KB = 1000); a bare number counts bytes. `chars` are
	// Unicode code points of UTF-8 text: a character is never split across
	// chunks, and bytes that are not UTF-8 count as one character each.
	// Default: `1KiB`.
	Chunk string `json:"chunk,omitempty"`

	// Time from the start of one chunk to the start of the next, as a duration
	// such as `100ms` or `1.5s`. The first chunk leaves at once and chunk k at
	// k × interval after it, on an absolute schedule, so errors do not add up
	// over a long body. Default: none, so chunks go out as fast as the client
	// takes them, each flushed; `100ms` if chunk is not set either.
	Interval string `json:"interval,omitempty"`

	// What to do with the response's Content-Type. `auto` sets
	// `application/octet-stream` when the type is missing or text-like
	// (`text/*` but `text/event-stream`, JSON, XML, JavaScript, NDJSON), which
	// compressors and intermediaries would buffer, except on a response to a
	// page navigation (`Sec-Fetch-Dest: document`, `iframe` or `frame`), which
	// a browser would then download instead of showing. `keep` never changes
	// it; any other value is a media type to set on every paced response.
	// Default: `auto`.
	ContentType string `json:"content_type,omitempty"`

	cfg config
}

// config is a Handler's options, parsed.
type config struct {
	chunk       pacing.ChunkSize
	interval    time.Duration
	contentType string // contentTypeAuto, contentTypeKeep or a media type
}

const (
	contentTypeAuto = "auto"
	contentTypeKeep = "keep"
)

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.pace",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision parses the options and fills in the defaults.
func (h *Handler) Provision(caddy.Context) error {
	cfg, err := h.parse()
	if err != nil {
		return err
	}
	h.cfg = cfg
	return nil
}

// parse turns the options into a config, or an error that names the option,
// the value and what is accepted.
func (h *Handler) parse() (config, error) {
	cfg := config{chunk: pacing.DefaultChunk, contentType: contentTypeAuto}
	if h.Chunk == "" && h.Interval == "" {
		cfg.interval = defaultInterval
	}
	if h.Chunk != "" {
		c, err := pacing.ParseChunk(h.Chunk)
		if err != nil {
			return cfg, fmt.Errorf("chunk %v", err)
		}
		cfg.chunk = c
	}
	if h.Interval != "" {
		d, err := caddy.ParseDuration(h.Interval)
		if err != nil {
			return cfg, fmt.Errorf("interval %q: not a duration (want e.g. 100ms, 1.5s, 2m)", h.Interval)
		}
		if d < 0 {
			return cfg, fmt.Errorf("interval %q: must not be negative", h.Interval)
		}
		cfg.interval = d
	}
	switch ct := strings.TrimSpace(h.ContentType); ct {
	case "", contentTypeAuto:
	case contentTypeKeep:
		cfg.contentType = contentTypeKeep
	default:
		if _, _, err := mime.ParseMediaType(ct); err != nil || !strings.Contains(ct, "/") {
			return cfg, fmt.Errorf("content_type %q: not a media type (want auto, keep, or a media type such as application/octet-stream)", h.ContentType)
		}
		cfg.contentType = ct
	}
	return cfg, nil
}

// defaultInterval is the pause of the bare `pace` directive.
const defaultInterval = 100 * time.Millisecond

// ServeHTTP paces the body of the response that next writes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !mayHaveBody(r) {
		return next.ServeHTTP(w, r)
	}
	pw := newPacedWriter(w, r, &h.cfg)
	defer pw.release()
	err := next.ServeHTTP(pw, r)
	if err == nil {
		err = pw.close()
	}
	if err != nil && r.Context().Err() != nil {
		// The client went away: not the server's failure. Like
		// reverse_proxy, report 499, which Caddy logs at debug level.
		return caddyhttp.Error(statusClientClosedRequest, err)
	}
	return err
}

// statusClientClosedRequest is nginx's code, which Caddy uses too, for a
// response that the client did not stay to receive.
const statusClientClosedRequest = 499

// mayHaveBody reports whether the response to r can have a body to pace: not
// for HEAD, nor for a protocol upgrade or CONNECT, whose "body" is a tunnel.
func mayHaveBody(r *http.Request) bool {
	return r.Method != http.MethodHead &&
		r.Method != http.MethodConnect &&
		r.Header.Get("Upgrade") == ""
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
