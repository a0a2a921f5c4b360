// Package pace is the Caddy module caddy-pace: an HTTP handler that paces the
// response body of whatever handler comes next (reverse_proxy, file_server,
// respond, templates…), re-emitting it in chunks with a flush after each, at
// an interval or a rate, behind a latency: a slow network, a bandwidth limit
// or a streaming demo, with no change to the app.
//
// Blank-import it into a Caddy build, or build with
// xcaddy build --with github.com/caddy-pace/caddy-pace/module.
package pace

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-pace/caddy-pace/pacing"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler paces the response body that the next handler writes: it sends it
// on in chunks, each flushed through every wrapper down to the connection,
// no faster than the interval and the rate allow. Bytes out are exactly
// bytes in; only the timing changes.
//
// Responses without a body (to HEAD, 1xx, 204, 304) pass through, after the
// latency. Protocol upgrades (WebSocket) pass through untouched. Paced
// responses carry `X-Accel-Buffering: no`, so that an nginx in front does not
// hold them back, and `X-Content-Type-Options: nosniff` where their type is
// right for what the browser does with them, so that its type sniffing does
// not either.
//
// A preset, rtt or model makes a network: one link for each client, which
// all its responses and uploads go through, with round trips where TCP pays
// them. Responses on a network are not changed: no header is added or
// rewritten.
//
// With none of preset, model, rtt, chunk, interval, rate, latency and
// upload_rate set, the handler paces 1 KiB every 100 ms.
//
// Every property accepts placeholders, resolved per request. A value that
// resolves empty leaves its property unset. A value that does not parse
// fails the request with status 400 before the next handler runs; the error
// names the property and the value, and goes to the site's handle_errors
// routes if it has any, or else is written as the response body.
type Handler struct {
	// A network: the link behind one of Chrome DevTools' profiles, which
	// every response and upload of a client goes through. `3g` (alias
	// `slow-3g`): 400 ms round trip, 500 kbit/s down and up; `slow-4g`
	// (alias `fast-3g`): 150 ms, 1.6 Mbit/s down, 750 kbit/s up; `fast-4g`:
	// 60 ms, 9 Mbit/s down, 1.5 Mbit/s up. It sets rtt, rate and
	// upload_rate, or under model devtools latency, rate and upload_rate
	// to DevTools' own numbers. Properties set beside it override its
	// parts. `offline`: a link that carries nothing, for a live change
	// (name). Default: none.
	Preset string `json:"preset,omitempty"`

	// How a network's numbers are applied. `link` (the default): as a
	// packet-level link would, with round trips where TCP pays them (a new
	// connection's handshakes, one per request, slow start) and 1448 bytes
	// of payload in every 1500-byte packet. `devtools`: as Chrome DevTools'
	// throttling does, a response's head no sooner than latency after its
	// request, and the rates shared by all of a client's requests. Setting
	// it makes a network. Default: `link`.
	Model string `json:"model,omitempty"`

	// The round-trip time of a network's link, as a duration such as
	// `150ms`. Setting it makes a network, of unlimited rate unless rate
	// or upload_rate is set. Default: the preset's, or none.
	RTT string `json:"rtt,omitempty"`

	// How much of the body goes out at once, as a count and a unit: `5chars`,
	// `1 char`, `3words`, `2 lines`, `1 event`, `1KiB`, `1.5 KB`,
	// `512 bytes`. Sizes take go-humanize's units (KiB = 1024 bytes,
	// KB = 1000); a bare number counts bytes. `chars` are Unicode code
	// points of UTF-8 text, never split across chunks (bytes that are not
	// UTF-8 count as one character each); `words` end after the whitespace
	// that follows the Nth word; `lines` after the Nth newline; `events`
	// after the blank line that ends the Nth Server-Sent Event. Default:
	// under a rate, what the rate sends in 100 ms; otherwise `1KiB`.
	Chunk string `json:"chunk,omitempty"`

	// Time from the start of one chunk to the start of the next, as a
	// duration such as `100ms` or `1.5s`. The first chunk leaves at once and
	// chunk k at k × interval after it, on an absolute schedule, so errors
	// do not add up over a long body. Default: none; `100ms` if no other
	// timing property is set.
	Interval string `json:"interval,omitempty"`

	// The most bytes per second the body may use: a size such as `64KiB`
	// or `1MB`, or bits with a `bit` suffix such as `500kbit` or `1.5Mbit`.
	// Each chunk leaves when a link of this rate would have carried its last
	// byte, so n bytes take n / rate. With an interval too, the slower of
	// the two wins. On a network, the rate of the client's link down,
	// shared by all its responses. Default: none.
	Rate string `json:"rate,omitempty"`

	// How long the response head is held once the next handler has written
	// it, as a duration: time to first byte grows by exactly that. Under
	// model devtools, the least time from a request to its response's head
	// instead. Default: none.
	Latency string `json:"latency,omitempty"`

	// Random variation of the gaps between chunks, as a percentage such as
	// `20%`: each chunk leaves up to half of it away from its slot, so gaps
	// vary by up to ± that much of themselves while their mean is kept.
	// Default: none.
	Jitter string `json:"jitter,omitempty"`

	// How many leading bytes of the body go out unpaced, as a size such as
	// `1MiB`, like nginx's `limit_rate_after`. The chunk that holds that
	// byte goes out unpaced too, so no chunk is split. Default: none.
	After string `json:"after,omitempty"`

	// What to do with the response's Content-Type. `auto` sets
	// `application/octet-stream` when the type is missing or text-like
	// (`text/*` but `text/event-stream`, JSON, XML, JavaScript, NDJSON), which
	// compressors and intermediaries would buffer, and the request is read
	// by a script or a client that is not a browser (`Sec-Fetch-Dest` `empty`
	// or absent): a stylesheet, script, font, image or page keeps its type,
	// which the browser needs. `keep` never changes it; any other value is a
	// media type to set on every paced response. Default: `auto`.
	ContentType string `json:"content_type,omitempty"`

	// A key, such as `{remote_host}`, that makes all responses whose key
	// resolves to the same value draw from one rate: a per-client link, or
	// with a constant a whole-site link. Concurrent streams on one key get
	// fair shares. The budgets are kept across config reloads; a budget no
	// stream uses is forgotten once it has refilled, and at most 10,000 idle
	// ones are held. Needs rate or a network. On a network, the key of the
	// link. Default: none, so each response has the rate to itself; on a
	// network, the client's address (Caddy's client_ip).
	Share string `json:"share,omitempty"`

	// The share of matching requests to pace, from `0` to `100` (a `%`
	// sign is allowed); the others pass through untouched. Default: `100`.
	Percent string `json:"percent,omitempty"`

	// The longest a paced response may take, counted from when the request
	// reaches this handler, latency included: past it, the rest of the body
	// goes out at full speed. Nothing is ever cut. Default: none.
	MaxDuration string `json:"max_duration,omitempty"`

	// The most bytes per second at which the next handler reads the request
	// body, as a size or bits like rate: the client is slowed in turn once
	// the connection's buffers are full. On a network, the rate of the
	// client's link up. Default: none.
	UploadRate string `json:"upload_rate,omitempty"`

	// A file of a network's capacity down over time, in place of rate, in
	// Mahimahi's packet-delivery format: each line a time in milliseconds,
	// an opportunity to deliver a packet of 1500 bytes; the trace repeats
	// after its last time. Read once, and again when the file changes.
	// Default: none.
	Trace string `json:"trace,omitempty"`

	// Like trace, for the way up, in place of upload_rate. Default: none.
	UploadTrace string `json:"upload_trace,omitempty"`

	// The share of a network link's packets lost each way, as a
	// percentage, optionally with a mean burst length in packets: `2%` or
	// `2% burst 3`. TCP recovers each loss: the connection stalls until the
	// lost packet is sent again, a round trip later (two for a tail loss),
	// and its window is cut to 0.7 of itself. No byte of a response is
	// lost. Default: none.
	Loss string `json:"loss,omitempty"`

	// The bottleneck queue of each way of a network's link: what the
	// client's connections send waits in it, first in first out, and a
	// packet that finds it full is dropped, so that a download fills it and
	// every request behind waits. A count of packets (`1000 packets`), a
	// size (`1MB`), a duration of the link's rate (`2s`), or `fair`: no
	// queue, a fair share for each stream. Default: `1000 packets`, the
	// length of Linux's and netem's queues; none under model devtools.
	Queue string `json:"queue,omitempty"`

	// Periodic outages of a network's link, both ways: `5s every 60s`
	// carries nothing for the last 5 s of every 60 s from the link's
	// making. Bytes and requests wait; connections stay open. Default:
	// none.
	Outage string `json:"outage,omitempty"`

	// The share of paced responses on a network to cut at a random point
	// of the body, as a percentage: the connection is reset (HTTP/1.1) or
	// the stream (HTTP/2), never ended as a clean short body. For testing
	// resumable downloads and retries. Default: none.
	Reset string `json:"reset,omitempty"`

	// A name for the network, which Caddy's admin API can then change live
	// (/pace/networks/<name>): 1 to 64 letters, digits, dots, hyphens or
	// underscores. Its options take no placeholders. Default: none.
	Name string `json:"name,omitempty"`

	// Which responses to pace, by status and headers, with Caddy's response
	// matcher; the others pass through untouched (latency included).
	// Default: all.
	Match *caddyhttp.ResponseMatcher `json:"match,omitempty"`

	vals    optionValues // the options as written
	static  *options     // the options when no value has a placeholder
	dynamic bool         // some value has a placeholder: parse per request
	budgets *pacing.Budgets
	links   *pacing.Links
	named   *namedNetwork  // the network called Name
	random  func() float64 // for percent and jitter; tests seed it
	logger  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.pace",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision parses the options, takes the shared budgets if share is set,
// and registers the metrics.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.random == nil {
		h.random = newRandom()
	}
	h.vals = h.values()
	o, err := h.vals.parse(staticValue)
	if err != nil {
		return err
	}
	h.static = &o
	for _, v := range h.vals {
		if strings.Contains(v, "{") {
			h.dynamic = true
		}
	}
	if h.Share != "" {
		v, _, err := sharedBudgets.LoadOrNew(sharedBudgetsKey, func() (caddy.Destructor, error) {
			return budgetsHolder{pacing.NewBudgets(maxIdleBudgets)}, nil
		})
		if err != nil {
			return err
		}
		h.budgets = v.(budgetsHolder).Budgets
	}
	if h.vals.mayBeNetwork() {
		if err := h.provisionNetwork(ctx); err != nil {
			return err
		}
	}
	if h.Name != "" {
		if err := h.check(); err != nil {
			return err
		}
		h.named = registerNamed(h)
	}
	return registerMetrics(ctx.GetMetricsRegistry())
}

// Validate refuses options that contradict each other.
func (h *Handler) Validate() error {
	return h.check()
}

// check refuses options that contradict each other.
func (h *Handler) check() error {
	return h.values().check()
}

// Cleanup lets go of the shared budgets and links; they outlive a config
// reload that keeps a handler with share or a network, since that one takes
// them first.
func (h *Handler) Cleanup() error {
	if h.named != nil {
		releaseNamed(h.named, h)
	}
	var err error
	if h.budgets != nil {
		_, err = sharedBudgets.Delete(sharedBudgetsKey)
	}
	if h.links != nil {
		if _, lerr := sharedLinks.Delete(sharedLinksKey); err == nil {
			err = lerr
		}
	}
	return err
}

// newRandom returns the source of uniform numbers in [0, 1) of a handler,
// for percent, jitter and reset; tests make it seeded.
var newRandom = func() func() float64 { return rand.Float64 }

// sharedBudgets holds the budgets of share across config reloads, for as
// long as a handler with share is loaded.
var sharedBudgets = caddy.NewUsagePool()

const sharedBudgetsKey = "pace.share"

// maxIdleBudgets bounds the shared budgets that no stream is using.
var maxIdleBudgets = 10000

type budgetsHolder struct{ *pacing.Budgets }

func (budgetsHolder) Destruct() error { return nil }

// ServeHTTP paces the response that next writes, and the request body if
// upload_rate is set.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if isTunnel(r) && !h.vals.mayBeNetwork() {
		return next.ServeHTTP(w, r)
	}
	o, err := h.optionsFor(r)
	if err != nil {
		return h.refuse(w, r, err)
	}
	if isTunnel(r) {
		if o.net != nil {
			return o.net.serveTunnel(h, w, r, next)
		}
		return next.ServeHTTP(w, r)
	}
	if o.percent < 100 && !(h.random()*100 < o.percent) {
		return next.ServeHTTP(w, r)
	}
	var deadline time.Time
	if o.maxDuration > 0 {
		deadline = time.Now().Add(o.maxDuration)
	}
	if o.net != nil {
		return o.net.serve(h, w, r, next, o, deadline)
	}
	if o.uploadRate > 0 && r.Body != nil && r.Body != http.NoBody {
		defer paceUpload(r, o.uploadRate, deadline).clock.Stop()
	}
	if !o.wrapsResponse() {
		return next.ServeHTTP(w, r)
	}
	return h.serveWriter(newPacedWriter(w, r, h, o, deadline), r, next)
}

// serveWriter has next write its response to pw, and ends it.
func (h *Handler) serveWriter(pw *pacedWriter, r *http.Request, next caddyhttp.Handler) (err error) {
	// Deferred: reverse_proxy aborts with panic(http.ErrAbortHandler) when a
	// write to the client fails, and what the writer holds must still go.
	err = errAborted
	defer func() { pw.release(err) }()
	err = next.ServeHTTP(pw, r)
	if err == nil {
		err = pw.close()
	}
	if err != nil && r.Context().Err() != nil {
		return clientGone(err)
	}
	return err
}

// clientGone reports a response that the client did not stay to receive: not
// the server's failure. Like reverse_proxy, it is a 499, which Caddy logs at
// debug level. Out of line, to keep ServeHTTP's frame small.
//
//go:noinline
func clientGone(err error) error {
	return caddyhttp.Error(statusClientClosedRequest, err)
}

// optionsFor returns the options for r: the static ones, or, if a value has
// a placeholder, r's own. It is kept out of line, like paceUpload, so that
// ServeHTTP's frame, which stays on the stack for the whole response, is
// small: see pacedWriter.WriteHeader.
//
//go:noinline
func (h *Handler) optionsFor(r *http.Request) (*options, error) {
	if h.named != nil {
		return h.named.optionsFor(r), nil
	}
	if !h.dynamic {
		return h.static, nil
	}
	o, err := h.vals.parse(resolver(r))
	return &o, err
}

// paceUpload makes the next handler read r's body at bytesPerSecond until
// deadline; the caller stops the returned body's clock when it is done.
//
//go:noinline
func paceUpload(r *http.Request, bytesPerSecond float64, deadline time.Time) *uploadBody {
	body := &uploadBody{Closer: r.Body}
	body.Reader = pacing.NewReader(r.Context(), r.Body, bytesPerSecond, deadline, &body.clock)
	r.Body = body
	return body
}

// errAborted is how a response ended if the next handler panicked.
var errAborted = errors.New("the next handler aborted")

// statusClientClosedRequest is nginx's code, which Caddy uses too, for a
// response that the client did not stay to receive.
const statusClientClosedRequest = 499

// isTunnel reports whether r opens a tunnel (a protocol upgrade or CONNECT),
// whose "body" is not a response to pace.
func isTunnel(r *http.Request) bool {
	return r.Method == http.MethodConnect || r.Header.Get("Upgrade") != ""
}

// uploadBody is a request body read through a pacing.Reader.
type uploadBody struct {
	*pacing.Reader
	io.Closer
	clock pacing.RealClock
}

// refuse fails a request whose options did not parse, with 400 and a
// message that names the option and the value.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) error {
	err = fmt.Errorf("pace: %w", err)
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.Errors != nil && len(srv.Errors.Routes) > 0 {
		return caddyhttp.Error(http.StatusBadRequest, err) // {err.message} in handle_errors
	}
	// Caddy's own error response has no body; say what was wrong.
	if c := h.logger.Check(zapcore.DebugLevel, "refused a request with a bad pace value"); c != nil {
		c.Write(zap.Error(err))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusBadRequest)
	_, werr := io.WriteString(w, err.Error()+"\n")
	return werr
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
