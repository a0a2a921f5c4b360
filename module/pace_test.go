package pace

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTextFiveCharsEvery100ms(t *testing.T) {
	story, err := os.ReadFile("testdata/story.txt")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("testdata")
	base := startCaddyfile(t, `ADDR {
		root * `+root+`
		pace /story.txt 5chars 100ms
		file_server
	}`)
	r := get(t, base+"/story.txt")

	if !bytes.Equal(r.body, story) {
		t.Fatalf("body differs:\n got %q\nwant %q", r.body, story)
	}
	chars := utf8.RuneCount(story)
	chunks := (chars + 4) / 5
	for i, rd := range r.reads {
		if !utf8.Valid(rd.data) {
			t.Errorf("read %d at %v splits a character: %q", i, rd.at, rd.data)
		}
		if n := utf8.RuneCount(rd.data); n%5 != 0 && i != len(r.reads)-1 {
			t.Errorf("read %d at %v holds %d characters, not whole chunks of 5: %q", i, rd.at, n, rd.data)
		}
	}
	if len(r.reads) < chunks/2 {
		t.Errorf("%d reads for %d chunks: the text did not arrive chunk by chunk", len(r.reads), chunks)
	}
	if r.ttfb > 300*time.Millisecond {
		t.Errorf("first bytes after %v, want them at once", r.ttfb)
	}
	checkTiming(t, r, chunks, 100*time.Millisecond)
	t.Logf("%d characters in %d chunks: %d reads, first after %v, all after %v",
		chars, chunks, len(r.reads), r.ttfb, r.total)

	for header, want := range map[string]string{
		"Content-Type":           "application/octet-stream",
		"X-Content-Type-Options": "nosniff",
		"X-Accel-Buffering":      "no",
		"Content-Length":         fmt.Sprint(len(story)),
	} {
		if got := r.Header.Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
	if r.Header.Get("Etag") == "" {
		t.Error("the ETag of file_server is gone")
	}
}

// noisePNG writes a PNG of random pixels, which does not compress, and returns its bytes.
func noisePNG(t *testing.T, path string, side int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Uint32())
	}
	img.Set(0, 0, color.White)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImageOneKiBEvery100msKeepsItsType(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "img"), 0o755)
	pic := noisePNG(t, filepath.Join(root, "img", "noise.png"), 40)
	base := startCaddyfile(t, `ADDR {
		root * `+root+`
		pace /img/* 1KiB 100ms
		file_server
	}`)
	r := get(t, base+"/img/noise.png")

	if !bytes.Equal(r.body, pic) {
		t.Fatal("image bytes differ")
	}
	if ct := r.Header.Get("Content-Type"); ct != "image/png" {
		t.Errorf("Content-Type = %q, want image/png", ct)
	}
	chunks := (len(pic) + 1023) / 1024
	for i, rd := range r.reads[:len(r.reads)-1] {
		if len(rd.data)%1024 != 0 {
			t.Errorf("read %d holds %d bytes, not whole chunks of 1 KiB", i, len(rd.data))
		}
	}
	checkTiming(t, r, chunks, 100*time.Millisecond)
	t.Logf("%d-byte PNG in %d chunks: %d reads, done after %v", len(pic), chunks, len(r.reads), r.total)
}

func TestReverseProxyUpstreamIsPacedAndIntact(t *testing.T) {
	body := randomBytes(10<<10, 3)
	base := proxyPaced(t, "1KiB 50ms", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-random")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	}))
	r := get(t, base+"/")

	if sha256.Sum256(r.body) != sha256.Sum256(body) {
		t.Fatalf("body differs: %d bytes, want %d", len(r.body), len(body))
	}
	if cl := r.Header.Get("Content-Length"); cl != fmt.Sprint(len(body)) {
		t.Errorf("Content-Length = %q, want %d", cl, len(body))
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-random" {
		t.Errorf("Content-Type = %q: a binary type must be kept", ct)
	}
	checkTiming(t, r, 10, 50*time.Millisecond)
}

func TestRespondWritesItsBodyAtOnceAndItIsSplit(t *testing.T) {
	base := startCaddyfile(t, `ADDR {
		pace 3 50ms
		respond "abcdefghij"
	}`)
	r := get(t, base+"/")
	if string(r.body) != "abcdefghij" {
		t.Fatalf("body = %q", r.body)
	}
	var got []string
	for _, rd := range r.reads {
		got = append(got, string(rd.data))
	}
	if len(r.reads) < 3 {
		t.Errorf("reads %q: respond's single write was not split into chunks", got)
	}
	checkTiming(t, r, 4, 50*time.Millisecond)
}

// gzipStream is a text body long enough for encode to compress (over 512 bytes).
var gzipStream = strings.Repeat("The quick brown fox jumps over the lazy dog. ", 30)

func TestEncodeGzipStillDeliversChunkByChunk(t *testing.T) {
	// encode judges minimum_length by Content-Length, or else by the first
	// write, which pacing makes one chunk long; file_server sets the length.
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "fox.txt"), []byte(gzipStream), 0o644)
	base := startCaddyfile(t, `ADDR {
		root * `+root+`
		encode gzip
		pace 200 60ms
		file_server
	}`)
	chunks := (len(gzipStream) + 199) / 200

	t.Run("fetch: octet-stream, which encode leaves alone", func(t *testing.T) {
		r := get(t, base+"/fox.txt", "Accept-Encoding", "gzip")
		if ce := r.Header.Get("Content-Encoding"); ce != "" {
			t.Errorf("Content-Encoding = %q: the rewritten type should not be compressed", ce)
		}
		if string(r.body) != gzipStream {
			t.Fatal("body differs")
		}
		if len(r.reads) < chunks/2 {
			t.Errorf("%d reads for %d chunks", len(r.reads), chunks)
		}
		checkTiming(t, r, chunks, 60*time.Millisecond)
	})

	t.Run("navigation: text kept, compressed, and flushed at every chunk", func(t *testing.T) {
		r := get(t, base+"/fox.txt", "Accept-Encoding", "gzip", "Sec-Fetch-Dest", "document")
		if ce := r.Header.Get("Content-Encoding"); ce != "gzip" {
			t.Fatalf("Content-Encoding = %q, want gzip", ce)
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("Content-Type = %q, want text/plain", r.Header.Get("Content-Type"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil || string(plain) != gzipStream {
			t.Fatalf("decompressed body differs (%v)", err)
		}
		if len(r.reads) < chunks/2 {
			t.Errorf("%d reads of the gzip stream for %d chunks: encode held the chunks back", len(r.reads), chunks)
		}
		checkTiming(t, r, chunks, 60*time.Millisecond)
	})
}

func TestContentType(t *testing.T) {
	root := t.TempDir()
	for name, content := range map[string]string{
		"a.txt": "hello", "a.json": `{"a":1}`, "a.css": "p{color:red}", "a.js": "x=1",
		"a.woff2": "wOF2", "a.html": "<p>hi",
	} {
		os.WriteFile(filepath.Join(root, name), []byte(content), 0o644)
	}
	noisePNG(t, filepath.Join(root, "a.png"), 2)
	base := startCaddyfile(t, `ADDR {
		root * `+root+`
		handle_path /keep/* {
			pace 1KiB {
				content_type keep
			}
			file_server
		}
		handle_path /set/* {
			pace 1KiB {
				content_type text/x-paced
			}
			file_server
		}
		handle_path /as-text/* {
			pace 1KiB
			header Content-Type text/plain
			file_server
		}
		handle /sse {
			pace 1KiB
			header Content-Type text/event-stream
			respond "data: hi\n\n"
		}
		handle {
			pace 1KiB
			file_server
		}
	}`)
	const text, css, js = "text/plain; charset=utf-8", "text/css; charset=utf-8", "text/javascript; charset=utf-8"
	tests := []struct {
		name, path, dest, want string
		nosniff                bool
	}{
		{"auto rewrites text for a client that is not a browser", "/a.txt", "", "application/octet-stream", true},
		{"auto rewrites JSON", "/a.json", "", "application/octet-stream", true},
		{"auto rewrites text read by fetch or XHR", "/a.txt", "empty", "application/octet-stream", true},
		{"auto rewrites a script read by fetch", "/a.js", "empty", "application/octet-stream", true},
		{"auto keeps a stylesheet", "/a.css", "style", css, true},
		{"auto keeps a script", "/a.js", "script", js, true},
		{"auto keeps a worker", "/a.js", "worker", js, true},
		{"auto keeps a service worker", "/a.js", "serviceworker", js, true},
		{"auto keeps a font", "/a.woff2", "font", "font/woff2", true},
		{"auto keeps a manifest", "/a.json", "manifest", "application/json", false},
		{"auto keeps an image", "/a.png", "image", "image/png", true},
		{"auto keeps text for a page navigation", "/a.txt", "document", text, true},
		{"auto keeps a page", "/a.html", "document", "text/html; charset=utf-8", true},
		{"auto keeps text for an iframe", "/a.txt", "iframe", text, true},
		{"auto keeps images read by fetch", "/a.png", "", "image/png", true},
		{"auto keeps event streams", "/sse", "", "text/event-stream", true},
		{"keep keeps text", "/keep/a.txt", "", text, true},
		{"keep keeps a script", "/keep/a.js", "script", js, true},
		{"a media type is set", "/set/a.png", "", "text/x-paced", true},
		{"a script served as text/plain runs, so no nosniff", "/as-text/a.js", "script", "text/plain", false},
		{"a stylesheet served as text/plain applies, so no nosniff", "/as-text/a.css", "style", "text/plain", false},
		{"an image served as text/plain shows, so no nosniff", "/as-text/a.png", "image", "text/plain", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, base+tc.path, "Sec-Fetch-Dest", tc.dest)
			if got := r.Header.Get("Content-Type"); got != tc.want {
				t.Errorf("Content-Type = %q, want %q", got, tc.want)
			}
			if got := r.Header.Get("X-Content-Type-Options") == "nosniff"; got != tc.nosniff {
				t.Errorf("nosniff %v, want %v", got, tc.nosniff)
			}
			if r.Header.Get("X-Accel-Buffering") != "no" {
				t.Errorf("paced response lacks X-Accel-Buffering: %v", r.Header)
			}
		})
	}
}

func TestNosniffKeeps(t *testing.T) {
	for _, tc := range []struct {
		dest, contentType string
		want              bool
	}{
		{"", "text/plain", true},
		{"empty", "anything/at-all", true},
		{"script", "text/javascript", true},
		{"script", "Application/JavaScript; charset=utf-8", true},
		{"script", "text/plain", false},
		{"script", "", false},
		{"worker", "application/json", false},
		{"style", "text/css", true},
		{"style", "text/plain", false},
		{"json", "application/json", true},
		{"json", "text/plain", false},
		{"document", "text/plain", true},
		{"document", "", false},
		{"iframe", "unknown/unknown", false},
		{"image", "image/png", true},
		{"image", "text/plain", false},
		{"image", "text/html", false},
		{"image", "application/json", false},
		{"image", "", false},
		{"font", "font/woff2", true},
		{"video", "video/mp4", true},
	} {
		if got := nosniffKeeps(tc.dest, tc.contentType); got != tc.want {
			t.Errorf("nosniffKeeps(%q, %q) = %v, want %v", tc.dest, tc.contentType, got, tc.want)
		}
	}
}

func TestIsBuffered(t *testing.T) {
	for ct, want := range map[string]bool{
		"":                            true,
		"text/plain":                  true,
		"Text/HTML; charset=utf-8":    true,
		"text/event-stream":           false,
		"text/event-stream; x=1":      false,
		"application/json":            true,
		"application/problem+json":    true,
		"application/atom+xml":        true,
		"application/javascript":      true,
		"application/x-ndjson":        true,
		"application/octet-stream":    false,
		"application/pdf":             false,
		"image/png":                   false,
		"image/svg+xml":               false,
		"video/mp4":                   false,
		"audio/mpeg":                  false,
		"multipart/form-data; b=xyz":  false,
		"application/vnd.api+json; x": true,
	} {
		if got := isBuffered(ct); got != want {
			t.Errorf("isBuffered(%q) = %v, want %v", ct, got, want)
		}
	}
}

// randomBytes returns n bytes that are the same for the same seed.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
	return b
}

func TestCharsStayWholeWhenReadsEndMidCharacter(t *testing.T) {
	// file_server's copy reads 512 bytes at a time; 512 is no multiple of 3,
	// so with Chinese text nearly every read ends inside a character.
	text := strings.Repeat("山里有一座庙，庙里有个老和尚。", 40) // 600 characters, 1800 bytes
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "zh.txt"), []byte(text), 0o644)
	base := startCaddyfile(t, `ADDR {
		root * `+root+`
		pace 7chars 2ms
		file_server
	}`)
	r := get(t, base+"/zh.txt")
	if string(r.body) != text {
		t.Fatal("body differs")
	}
	for i, rd := range r.reads {
		if !utf8.Valid(rd.data) {
			t.Fatalf("read %d splits a character: % x…", i, rd.data[:min(12, len(rd.data))])
		}
	}
	t.Logf("%d characters in %d reads, none split", utf8.RuneCountInString(text), len(r.reads))
}
