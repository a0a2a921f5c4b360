// Command floor is the Go floor for bench/run: what a paced stream costs in
// Go with nothing but net/http, against which caddy-pace's cost is
// measured. It serves GET /<n> as n bytes in chunks of -chunk bytes, one
// write and a flush each, the first at once and the next every -interval
// on an absolute schedule (as `pace 1KiB 100ms` sends them), from one
// shared buffer: no file, no Caddy, no pacing library.
//
//	floor -addr 127.0.0.1:8404 -chunk 1024 -interval 100ms [-pprof 127.0.0.1:8494]
package main

import (
	"flag"
	"log"
	"net/http"
	_ "net/http/pprof" // for -pprof
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8404", "where to listen")
	chunk := flag.Int("chunk", 1024, "bytes a chunk")
	interval := flag.Duration("interval", 100*time.Millisecond, "from one chunk to the next")
	pprof := flag.String("pprof", "", "where to serve /debug/pprof, for heap profiles (none if empty)")
	flag.Parse()
	if *pprof != "" {
		go func() { log.Fatal(http.ListenAndServe(*pprof, nil)) }()
	}
	data := make([]byte, *chunk)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil || n < 0 {
			http.Error(w, "GET /<bytes>", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		flusher := w.(http.Flusher)
		start := time.Now()
		timer := time.NewTimer(0)
		<-timer.C
		for k := 0; n > 0; k++ {
			if wait := time.Until(start.Add(time.Duration(k) * *interval)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-r.Context().Done():
					return
				}
			}
			m := min(n, len(data))
			if _, err := w.Write(data[:m]); err != nil {
				return
			}
			flusher.Flush()
			n -= m
		}
	}
	srv := &http.Server{Addr: *addr, Handler: http.HandlerFunc(handler)}
	log.Fatal(srv.ListenAndServe())
}
