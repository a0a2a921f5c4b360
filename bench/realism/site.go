package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// The pages the benchmark loads, written into a folder, the same bytes on
// every run:
//   - typical.html: 1,008,000 bytes in all: the page (12,000), two
//     stylesheets (20,000 and 16,000), two scripts (90,000 and 60,000), a
//     web font the stylesheet names (60,000) and 12 images of 10–140 KB;
//   - small.html: a page and 40 images of 2,048 bytes;
//   - download.html: a page and one image of 2,000,000 bytes.
//
// Each page checks itself once loaded: data-rules and data-scripts on its
// body say how many CSS rules must apply and how many scripts must run.

// page is one page: its file, and what it and its resources weigh.
type page struct {
	name, file string
	bytes      int
}

var pages = []page{
	{"typical", "typical.html", 1_008_000},
	{"small", "small.html", 0},
	{"download", "download.html", 0},
}

func writeSite(dir string) error {
	rng := rand.New(rand.NewPCG(7, 7))
	files := map[string][]byte{}

	// typical.html
	cssRules := 0
	for _, css := range []struct {
		name string
		size int
		font bool
	}{{"style-a.css", 20_000, true}, {"style-b.css", 16_000, false}} {
		var b strings.Builder
		if css.font {
			b.WriteString("@font-face { font-family: Bench; src: url(font.woff2) format(\"woff2\"); }\nbody { font-family: Bench, sans-serif; }\n")
			cssRules += 2
		}
		for i := 0; b.Len() < css.size-64; i++ {
			fmt.Fprintf(&b, ".%s-%d { color: #%06x; margin: %dpx; }\n", strings.TrimSuffix(css.name, ".css"), i, rng.IntN(1<<24), i%17)
			cssRules++
		}
		files[css.name] = pad([]byte(b.String()), css.size, "/*", "*/")
	}
	for _, js := range []struct {
		name string
		size int
	}{{"app-a.js", 90_000}, {"app-b.js", 60_000}} {
		var b strings.Builder
		b.WriteString("window.__ran = (window.__ran || 0) + 1;\n")
		for i := 0; b.Len() < js.size-64; i++ {
			fmt.Fprintf(&b, "function f%d(x) { return x * %d + %d; }\n", i, rng.IntN(1000), i)
		}
		files[js.name] = pad([]byte(b.String()), js.size, "/*", "*/")
	}
	files["font.woff2"] = randomBytes(rng, 60_000)
	var imgs strings.Builder
	for i, kb := range []int{10, 20, 30, 40, 50, 55, 60, 70, 80, 95, 100, 140} {
		name := fmt.Sprintf("img/t%02d.png", i)
		files[name] = noisePNG(rng, kb*1000)
		fmt.Fprintf(&imgs, "<img src=\"%s\" alt=\"\">\n", name)
	}
	files["typical.html"] = pad([]byte(fmt.Sprintf(`<!doctype html>
<html><head><meta charset="utf-8"><title>typical</title>
<link rel="stylesheet" href="style-a.css">
<link rel="stylesheet" href="style-b.css">
</head><body data-rules="%d" data-scripts="2">
<h1>A typical page</h1>
%s
<p>%s</p>
<script src="app-a.js"></script>
<script src="app-b.js"></script>
</body></html>
`, cssRules, imgs.String(), strings.Repeat("Some text of the page, set in its web font. ", 150))), 12_000, "<!--", "-->")

	// small.html
	imgs.Reset()
	for i := range 40 {
		name := fmt.Sprintf("img/s%02d.png", i)
		files[name] = noisePNG(rng, 2048)
		fmt.Fprintf(&imgs, "<img src=\"%s\" alt=\"\">\n", name)
	}
	files["small.html"] = []byte(`<!doctype html>
<html><head><meta charset="utf-8"><title>small</title></head>
<body data-rules="0" data-scripts="0">
` + imgs.String() + `</body></html>
`)

	// download.html, and a 1 MiB file for -downloads
	files["img/big.png"] = noisePNG(rng, 2_000_000)
	files["mib.bin"] = randomBytes(rng, 1<<20)
	files["fourmb.bin"] = randomBytes(rng, 4_000_000)
	files["download.html"] = []byte(`<!doctype html>
<html><head><meta charset="utf-8"><title>download</title></head>
<body data-rules="0" data-scripts="0"><img src="img/big.png" alt=""></body></html>
`)

	files["tiny.txt"] = []byte(tinyText)
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	for i := range pages {
		pages[i].bytes = 0
		for name, data := range files {
			if belongsTo(name, pages[i].name) {
				pages[i].bytes += len(data)
			}
		}
	}
	return nil
}

// belongsTo reports whether a file of the site is loaded by a page.
func belongsTo(name, page string) bool {
	switch page {
	case "small":
		return name == "small.html" || strings.HasPrefix(name, "img/s")
	case "download":
		return name == "download.html" || name == "img/big.png"
	}
	return !strings.HasPrefix(name, "small") && !strings.HasPrefix(name, "download") &&
		!strings.HasPrefix(name, "img/s") && name != "img/big.png" && !strings.HasSuffix(name, ".bin") && name != "tiny.txt"
}

// pad adds a comment to text so that it weighs size bytes.
func pad(text []byte, size int, open, close string) []byte {
	fill := size - len(text) - len(open) - len(close)
	if fill < 0 {
		panic(fmt.Sprintf("%d bytes do not fit in %d", len(text), size))
	}
	return append(text, []byte(open+strings.Repeat("x", fill)+close)...)
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// noisePNG returns a PNG of random pixels, which does not compress, of
// exactly size bytes: as large a square as fits, and an ancillary chunk of
// padding, which decoders skip.
func noisePNG(rng *rand.Rand, size int) []byte {
	seed := rng.Uint64()
	// A pixel of noise takes 3 bytes: the largest side that fits is a
	// little under the square root of a third of the size, in [lo, hi).
	guess := int(math.Sqrt(float64(size) / 3))
	lo, hi := max(guess-16, 1), guess+2
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; len(encodeNoise(seed, mid))+12 <= size {
			lo = mid
		} else {
			hi = mid
		}
	}
	return padPNG(encodeNoise(seed, lo), size)
}

func encodeNoise(seed uint64, side int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, side, side))
	rng := rand.New(rand.NewPCG(seed, uint64(side)))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.Uint32())
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	return buf.Bytes()
}

// padPNG puts a "paDd" chunk before IEND so that the PNG weighs size bytes.
func padPNG(img []byte, size int) []byte {
	iend := img[len(img)-12:]
	fill := size - len(img) - 12
	chunk := make([]byte, 8+fill+4)
	binary.BigEndian.PutUint32(chunk, uint32(fill))
	copy(chunk[4:], "paDd")
	binary.BigEndian.PutUint32(chunk[8+fill:], crc32.ChecksumIEEE(chunk[4:8+fill]))
	out := append(append(append([]byte(nil), img[:len(img)-12]...), chunk...), iend...)
	return out
}

// A benchTrace is a trace the realism benchmark downloads over, through
// pace on its own port and through the packet-level link.
type benchTrace struct {
	name  string // "" for the switching one, as results from before there were two have it
	about string
	port  int
	text  func() string
}

var benchTraces = []benchTrace{
	{"", "2 and 20 Mbit/s in turn every 3 s", 9981, switchingTrace},
	{"cellular", "a cellular link's made-up recording: between 0.5 and 40 Mbit/s, a new rate every 200 ms, delivered in bursts", 9982, cellularTrace},
}

// switchingTrace is a trace in Mahimahi's format whose capacity switches
// between 2 and 20 Mbit/s every 3 s, for 30 s: each millisecond's
// opportunities are what its rate carries in it, the fractions carried over.
func switchingTrace() string {
	var b strings.Builder
	owed := 0.0
	for ms := int64(0); ms < 30_000; ms++ {
		rate := 2e6 / 8
		if ms/3000%2 == 1 {
			rate = 20e6 / 8
		}
		for owed += rate / 1000 / 1500; owed >= 1; owed-- {
			fmt.Fprintln(&b, ms+1)
		}
	}
	return b.String()
}

// cellularTrace is a trace in Mahimahi's format shaped like a recording of a
// cellular link, the same on every run: its rate takes a random walk (×
// e^N(0, 0.5) every 200 ms, from 8 Mbit/s, kept between 0.5 and 40), and
// it delivers in bursts, as a cell's scheduler does: in each millisecond
// only with a chance of one in two, then all that is owed since, for 30 s.
func cellularTrace() string {
	random := rand.New(rand.NewPCG(12, 0))
	var b strings.Builder
	rate, owed := 8e6/8, 0.0
	for ms := int64(0); ms < 30_000; ms++ {
		if ms%200 == 0 && ms > 0 {
			rate = min(max(rate*math.Exp(random.NormFloat64()*0.5), 0.5e6/8), 40e6/8)
		}
		owed += rate / 1000 / 1500
		if random.IntN(2) == 0 {
			continue
		}
		for ; owed >= 1; owed-- {
			fmt.Fprintln(&b, ms+1)
		}
	}
	return b.String()
}
