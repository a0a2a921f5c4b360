package pace

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestClientGoneIsReported499NotAsAServerError(t *testing.T) {
	h := &Handler{Chunk: "1", Interval: "1h"}
	if err := h.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Write([]byte("a")) // chunk 0 leaves at once
		cancel()             // the client leaves during the hour-long wait
		_, err := w.Write([]byte("b"))
		return err
	})
	err := h.ServeHTTP(httptest.NewRecorder(), req, next)
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != 499 || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %#v, want a 499 HandlerError wrapping context.Canceled", err)
	}
}

func TestOtherErrorsPassThroughUnchanged(t *testing.T) {
	h := &Handler{}
	h.Provision(caddy.Context{})
	boom := errors.New("upstream on fire")
	err := h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil),
		caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return boom }))
	if err != boom {
		t.Fatalf("err = %v, want the next handler's own", err)
	}
}

func TestRecorderBelowGetsTheWholeBody(t *testing.T) {
	// With no flusher below (a plain recorder has one, but a minimal
	// ResponseWriter may not), the body still arrives whole.
	h := &Handler{Chunk: "2"}
	h.Provision(caddy.Context{})
	rec := &minimalWriter{header: http.Header{}}
	err := h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil),
		caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			_, err := w.Write([]byte("hello, world"))
			return err
		}))
	if err != nil || rec.body.String() != "hello, world" {
		t.Fatalf("err %v, body %q", err, rec.body.String())
	}
}

// minimalWriter is an http.ResponseWriter with nothing else: no Flush.
type minimalWriter struct {
	header http.Header
	body   strings.Builder
}

func (m *minimalWriter) Header() http.Header         { return m.header }
func (m *minimalWriter) Write(p []byte) (int, error) { return m.body.Write(p) }
func (m *minimalWriter) WriteHeader(int)             {}

func TestAnAbortingNextHandlerStillReleasesTheStream(t *testing.T) {
	h := &Handler{Chunk: "1"}
	if err := h.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	before := testutil.ToFloat64(paceMetrics.inFlight)
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want http.ErrAbortHandler", v)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil),
			caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				w.Write([]byte("abc"))
				panic(http.ErrAbortHandler) // as reverse_proxy does when the client is gone
			}))
	}()
	if after := testutil.ToFloat64(paceMetrics.inFlight); after != before {
		t.Fatalf("streams in flight went from %v to %v", before, after)
	}
}
