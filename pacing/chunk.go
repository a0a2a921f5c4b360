// Package pacing re-emits a byte stream in chunks on a schedule: it finds
// chunk boundaries (bytes, characters, words, lines, Server-Sent Events),
// decides when each chunk may leave (an interval, a rate, jitter), and writes
// and flushes it then. It knows nothing of Caddy or HTTP beyond
// an io.Writer and a flush function, so its timing is tested with a fake
// clock.
package pacing

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/dustin/go-humanize"
)

// Unit is what a chunk is counted in.
type Unit uint8

// The chunk units.
const (
	Bytes  Unit = iota // fixed-size slices of the body
	Chars              // Unicode code points of UTF-8 text, never split
	Words              // up to and including the whitespace after the Nth word
	Lines              // up to and including the Nth "\n"
	Events             // up to and including the blank line ending the Nth SSE event
)

var unitStrings = [...]string{Bytes: "bytes", Chars: "chars", Words: "words", Lines: "lines", Events: "events"}

func (u Unit) String() string {
	if int(u) < len(unitStrings) {
		return unitStrings[u]
	}
	return "unit(" + strconv.Itoa(int(u)) + ")"
}

// MaxChunk bounds a chunk's count, whatever its unit: 1 GiB of bytes, or
// 2^30 characters. Larger values are refused rather than overflowing.
const MaxChunk = 1 << 30

// ChunkSize is a chunk as configured: N units.
type ChunkSize struct {
	N    int
	Unit Unit
}

// DefaultChunk is the chunk used when none is configured: 1 KiB.
var DefaultChunk = ChunkSize{N: 1024, Unit: Bytes}

func (c ChunkSize) String() string {
	if c.Unit == Bytes {
		return humanize.IBytes(uint64(c.N))
	}
	unit := c.Unit.String()
	if c.N == 1 {
		unit = strings.TrimSuffix(unit, "s")
	}
	return strconv.Itoa(c.N) + " " + unit
}

// ByteHint is about how many bytes one chunk holds; it sizes read buffers.
func (c ChunkSize) ByteHint() int {
	return min(c.N, MaxChunk/bytesPerUnit[c.Unit]) * bytesPerUnit[c.Unit]
}

// bytesPerUnit is a rough size of one unit: the longest UTF-8 character, a
// short word, a short line, a short event.
var bytesPerUnit = [...]int{Bytes: 1, Chars: 4, Words: 8, Lines: 64, Events: 256}

// unitNames maps every accepted spelling of a counted unit to its Unit.
var unitNames = map[string]Unit{
	"char": Chars, "chars": Chars,
	"word": Words, "words": Words,
	"line": Lines, "lines": Lines,
	"event": Events, "events": Events,
}

// byteNames are the spellings of a bare byte count.
var byteNames = map[string]bool{"": true, "b": true, "byte": true, "bytes": true}

// ParseChunk parses a chunk written as "<n><unit>" or "<n> <unit>": "5chars",
// "5 chars", "1 char", "3words", "2 lines", "1 event", "1KiB", "1.5 KB",
// "512", "512 bytes". Sizes take
// go-humanize's units (KiB = 1024, KB = 1000); a bare number is bytes.
func ParseChunk(s string) (ChunkSize, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if num == "" {
		return ChunkSize{}, fmt.Errorf("%q: does not start with a number (want e.g. 5chars, 3words, 1line, 1event, 1KiB, 512 bytes)", s)
	}
	if u, ok := unitNames[strings.ToLower(unit)]; ok {
		n, err := strconv.Atoi(num)
		if err != nil || n <= 0 {
			return ChunkSize{}, fmt.Errorf("%q: the count of %s must be a whole number above zero", s, u)
		}
		if n > MaxChunk {
			return ChunkSize{}, fmt.Errorf("%q: at most %d %s a chunk", s, MaxChunk, u)
		}
		return ChunkSize{N: n, Unit: u}, nil
	}
	if byteNames[strings.ToLower(unit)] {
		unit = "B"
	}
	v, err := humanize.ParseBigBytes(num + unit)
	if err != nil || strings.IndexFunc(unit, func(r rune) bool { return !unicode.IsLetter(r) }) >= 0 {
		return ChunkSize{}, fmt.Errorf("%q: unknown unit %q (want bytes, a size unit such as KiB or KB, chars, words, lines or events)", s, unit)
	}
	if !v.IsInt64() || v.Int64() > MaxChunk {
		return ChunkSize{}, fmt.Errorf("%q: at most %s a chunk", s, humanize.IBytes(MaxChunk))
	}
	n := v.Int64()
	if n <= 0 {
		return ChunkSize{}, fmt.Errorf("%q: a chunk must hold at least one byte", s)
	}
	return ChunkSize{N: int(n)}, nil
}

// A Chunker finds chunk boundaries in a stream that arrives in pieces.
//
// Cut reports how many leading bytes of p belong to the current chunk and
// whether the chunk ends after them; when it ends, the chunker starts
// counting the next one. For a non-empty p it never returns (0, false), so a
// caller that loops on the rest of p always makes progress. (0, true) means
// the chunk ended with the bytes seen before p.
//
// CanFlush reports whether the bytes cut so far may be flushed without
// splitting a unit that must stay whole: it is false inside a multi-byte
// character of a chars chunk.
type Chunker interface {
	Cut(p []byte) (n int, end bool)
	CanFlush() bool
}

// NewChunker returns a fresh chunker for c.
func NewChunker(c ChunkSize) Chunker {
	switch c.Unit {
	case Chars:
		return &charChunker{n: c.N}
	case Words:
		return &wordChunker{n: c.N}
	case Lines:
		return &lineChunker{n: c.N}
	case Events:
		return &eventChunker{n: c.N, lineEmpty: true}
	default:
		return &byteChunker{n: c.N}
	}
}

// byteChunker cuts fixed-size slices.
type byteChunker struct {
	n    int // bytes per chunk
	seen int // bytes of the current chunk so far
}

func (c *byteChunker) Cut(p []byte) (int, bool) {
	k := min(len(p), c.n-c.seen)
	c.seen += k
	if c.seen == c.n {
		c.seen = 0
		return k, true
	}
	return k, false
}

func (c *byteChunker) CanFlush() bool { return true }

// charChunker counts UTF-8 code points by their lead bytes, so it needs no
// look-back across writes: a lead byte tells how many continuation bytes
// follow, and the chunk ends once the Nth character is complete. A byte that
// is not valid UTF-8 counts as one character on its own, so invalid text is
// cut like bytes and passes through unchanged.
type charChunker struct {
	n     int // characters per chunk
	seen  int // characters of the current chunk begun so far
	owing int // continuation bytes still owed to the last character
}

func (c *charChunker) Cut(p []byte) (int, bool) {
	for i, b := range p {
		if c.owing > 0 {
			if b&0xC0 == 0x80 {
				c.owing--
				if c.owing == 0 && c.seen == c.n {
					c.seen = 0
					return i + 1, true
				}
				continue
			}
			// A truncated sequence: what came so far was one invalid
			// character, and b starts the next.
			c.owing = 0
			if c.seen == c.n {
				c.seen = 0
				return i, true
			}
		}
		c.seen++
		c.owing = continuationBytes(b)
		if c.owing == 0 && c.seen == c.n {
			c.seen = 0
			return i + 1, true
		}
	}
	return len(p), false
}

func (c *charChunker) CanFlush() bool { return c.owing == 0 }

// continuationBytes is how many continuation bytes the lead byte b announces:
// 0 for ASCII and for bytes that cannot lead a UTF-8 sequence.
func continuationBytes(b byte) int {
	switch {
	case b >= 0xC2 && b <= 0xDF:
		return 1
	case b >= 0xE0 && b <= 0xEF:
		return 2
	case b >= 0xF0 && b <= 0xF4:
		return 3
	}
	return 0
}

// wordChunker ends a chunk after the Nth word and the whitespace that follows
// it, so the next chunk starts with a word. Whether the whitespace has ended
// shows only at the next word's first byte, so the chunk ends there: the
// (0, true) case of Cut. Words are separated by ASCII whitespace, so a
// boundary never falls inside a UTF-8 character.
type wordChunker struct {
	n      int  // words per chunk
	seen   int  // words of the current chunk begun so far
	inWord bool // the last byte was part of a word
}

func (c *wordChunker) Cut(p []byte) (int, bool) {
	for i, b := range p {
		if isSpace(b) {
			c.inWord = false
			continue
		}
		if c.inWord {
			continue
		}
		if c.seen == c.n { // b starts the first word of the next chunk
			c.seen = 0
			return i, true
		}
		c.inWord = true
		c.seen++
	}
	return len(p), false
}

func (c *wordChunker) CanFlush() bool { return true }

func isSpace(b byte) bool {
	switch b {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

// lineChunker ends a chunk after its Nth "\n".
type lineChunker struct {
	n    int // lines per chunk
	seen int // line ends in the current chunk so far
}

func (c *lineChunker) Cut(p []byte) (int, bool) {
	for i, b := range p {
		if b == '\n' {
			c.seen++
			if c.seen == c.n {
				c.seen = 0
				return i + 1, true
			}
		}
	}
	return len(p), false
}

func (c *lineChunker) CanFlush() bool { return true }

// eventChunker ends a chunk after the blank line that ends its Nth
// Server-Sent Event. Lines end in "\n", "\r\n" or "\r", as the SSE format
// allows. A blank line with no event before it (an extra one) ends nothing.
// When an event ends with "\r", whether a "\n" belongs to it shows only at
// the next byte, so the chunk ends there.
type eventChunker struct {
	n          int  // events per chunk
	seen       int  // events of the current chunk ended so far
	lineEmpty  bool // nothing since the last line end
	hasContent bool // the current event has a non-empty line
	afterCR    bool // the last byte was a "\r" line end, which a "\n" may complete
	endAfterCR bool // the Nth event ended with that "\r"
}

func (c *eventChunker) Cut(p []byte) (int, bool) {
	for i, b := range p {
		if c.endAfterCR {
			c.endAfterCR, c.afterCR, c.seen = false, false, 0
			if b == '\n' {
				return i + 1, true
			}
			return i, true
		}
		if c.afterCR && b == '\n' { // the rest of a "\r\n" line end
			c.afterCR = false
			continue
		}
		c.afterCR = false
		if b != '\n' && b != '\r' {
			c.lineEmpty, c.hasContent = false, true
			continue
		}
		c.afterCR = b == '\r'
		if !c.lineEmpty {
			c.lineEmpty = true // a line ended
			continue
		}
		if !c.hasContent {
			continue // a blank line with no event before it
		}
		c.hasContent = false // a blank line: the event ended
		c.seen++
		if c.seen < c.n {
			continue
		}
		if b == '\r' {
			c.endAfterCR = true
			continue
		}
		c.seen = 0
		return i + 1, true
	}
	return len(p), false
}

func (c *eventChunker) CanFlush() bool { return true }
