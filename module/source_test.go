package pace

import (
	"bytes"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(testSource{})
	// pace_test_source <size> <write_size>
	httpcaddyfile.RegisterHandlerDirective("pace_test_source", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		h.Next()
		var s testSource
		args := h.RemainingArgs()
		if len(args) != 2 {
			return nil, h.ArgErr()
		}
		s.Size, _ = strconv.Atoi(args[0])
		s.WriteSize, _ = strconv.Atoi(args[1])
		return s, nil
	})
	httpcaddyfile.RegisterDirectiveOrder("pace_test_source", httpcaddyfile.Before, "respond")
}

// testSource is a handler for tests: it writes Size bytes of 'x' in writes of
// WriteSize bytes, optionally after a 103 Early Hints, and counts in
// sourceAccepted how many bytes the writer below has taken so far.
type testSource struct {
	Size       int  `json:"size"`
	WriteSize  int  `json:"write_size"`
	EarlyHints bool `json:"early_hints,omitempty"`
}

var sourceAccepted atomic.Int64

func (testSource) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.pace_test_source",
		New: func() caddy.Module { return new(testSource) },
	}
}

func (s testSource) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if s.EarlyHints {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
	}
	buf := bytes.Repeat([]byte("x"), s.WriteSize)
	for sent := 0; sent < s.Size; {
		n, err := w.Write(buf[:min(len(buf), s.Size-sent)])
		sent += n
		sourceAccepted.Add(int64(n))
		if err != nil {
			return err
		}
	}
	return nil
}
