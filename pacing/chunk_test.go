package pacing

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseChunk(t *testing.T) {
	good := []struct {
		in   string
		want ChunkSize
	}{
		{"5chars", ChunkSize{5, Chars}},
		{"5 chars", ChunkSize{5, Chars}},
		{"1 char", ChunkSize{1, Chars}},
		{"5CHARS", ChunkSize{5, Chars}},
		{"1KiB", ChunkSize{1024, Bytes}},
		{"1 KiB", ChunkSize{1024, Bytes}},
		{"1KB", ChunkSize{1000, Bytes}},
		{"1.5KiB", ChunkSize{1536, Bytes}},
		{"512", ChunkSize{512, Bytes}},
		{"512 bytes", ChunkSize{512, Bytes}},
		{"1 byte", ChunkSize{1, Bytes}},
		{"64B", ChunkSize{64, Bytes}},
		{"3words", ChunkSize{3, Words}},
		{"1 word", ChunkSize{1, Words}},
		{"2 lines", ChunkSize{2, Lines}},
		{"1line", ChunkSize{1, Lines}},
		{"1 event", ChunkSize{1, Events}},
		{"4events", ChunkSize{4, Events}},
		{"1GiB", ChunkSize{1 << 30, Bytes}},
	}
	for _, tc := range good {
		got, err := ParseChunk(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseChunk(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, mention string }{
		{"", "number"},
		{"chars", "number"},
		{"0", "at least one byte"},
		{"0chars", "above zero"},
		{"-5chars", "number"},
		{"1.5chars", "whole number"},
		{"5furlongs", `unknown unit "furlongs"`},
		{"5 words-ish", "unknown unit"},
		{"2GiB", "at most"},
		{"99999999999999999999", "at most"},
		{"99999999999999999999chars", "whole number"},
		{"1e3", "unknown unit"},
		{"1..2KiB", "unknown unit"},
	}
	for _, tc := range bad {
		_, err := ParseChunk(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("ParseChunk(%q) error = %v; want one mentioning %q", tc.in, err, tc.mention)
		}
	}
}

// cutAll feeds the pieces to a fresh chunker and returns the chunks it cut;
// bytes after the last boundary form the last chunk.
func cutAll(c ChunkSize, pieces ...[]byte) []string {
	ch := NewChunker(c)
	var chunks []string
	var cur []byte
	for _, p := range pieces {
		for len(p) > 0 {
			n, end := ch.Cut(p)
			if n == 0 && !end {
				panic("chunker made no progress")
			}
			cur = append(cur, p[:n]...)
			p = p[n:]
			if end {
				chunks = append(chunks, string(cur))
				cur = nil
			}
		}
	}
	if len(cur) > 0 {
		chunks = append(chunks, string(cur))
	}
	return chunks
}

func TestChunkers(t *testing.T) {
	tests := []struct {
		name   string
		chunk  ChunkSize
		pieces []string
		want   []string
	}{
		{"bytes cut at fixed sizes", ChunkSize{3, Bytes}, []string{"abcdefgh"}, []string{"abc", "def", "gh"}},
		{"bytes carry their count across writes", ChunkSize{3, Bytes}, []string{"ab", "cd", "efg"}, []string{"abc", "def", "g"}},
		{"chars count code points, not bytes", ChunkSize{2, Chars}, []string{"你好世界ab"}, []string{"你好", "世界", "ab"}},
		{"chars mixes widths", ChunkSize{3, Chars}, []string{"a中€😀bc"}, []string{"a中€", "😀bc"}},
		{"chars keep a character whole when a write ends inside it", ChunkSize{1, Chars},
			[]string{"\xe4", "\xbd\xa0\xe5\xa5", "\xbd"}, []string{"你", "好"}},
		{"chars treat invalid bytes as one character each", ChunkSize{2, Chars},
			[]string{"\xff\xfea\x80"}, []string{"\xff\xfe", "a\x80"}},
		{"chars end a truncated sequence at the next lead byte", ChunkSize{1, Chars},
			[]string{"\xe4\xbdab"}, []string{"\xe4\xbd", "a", "b"}},
		{"chars: a truncated sequence split across writes", ChunkSize{2, Chars},
			[]string{"a\xe4", "b"}, []string{"a\xe4", "b"}},
		{"words end after the whitespace that follows the Nth word", ChunkSize{2, Words},
			[]string{"one two  three\tfour\r\nfive"}, []string{"one two  ", "three\tfour\r\n", "five"}},
		{"words: leading whitespace stays with the first word", ChunkSize{1, Words},
			[]string{"  你好 世界"}, []string{"  你好 ", "世界"}},
		{"words: the whitespace run may end in the next write", ChunkSize{1, Words},
			[]string{"ab ", " ", "cd"}, []string{"ab  ", "cd"}},
		{"lines end after the Nth newline", ChunkSize{2, Lines},
			[]string{"a\nb\r\nc\n", "d"}, []string{"a\nb\r\n", "c\nd"}},
		{"lines: empty lines count", ChunkSize{1, Lines},
			[]string{"\n\nx"}, []string{"\n", "\n", "x"}},
		{"events end after the blank line", ChunkSize{1, Events},
			[]string{"data: a\n\ndata: b\nid: 2\n\n"}, []string{"data: a\n\n", "data: b\nid: 2\n\n"}},
		{"events: CRLF and CR line ends", ChunkSize{1, Events},
			[]string{"data: a\r\n\r\ndata: b\r\rdata: c\r\n"}, []string{"data: a\r\n\r\n", "data: b\r\r", "data: c\r\n"}},
		{"events: a CRLF blank line split across writes", ChunkSize{1, Events},
			[]string{"data: a\r\n\r", "\ndata: b"}, []string{"data: a\r\n\r\n", "data: b"}},
		{"events: a CR blank line at the end of a write", ChunkSize{1, Events},
			[]string{"data: a\r\r", "data: b"}, []string{"data: a\r\r", "data: b"}},
		{"events: extra blank lines start the next chunk", ChunkSize{1, Events},
			[]string{"\n: hi\n\n\n\ndata: x\n\n"}, []string{"\n: hi\n\n", "\n\ndata: x\n\n"}},
		{"events: two per chunk", ChunkSize{2, Events},
			[]string{"data: 1\n\ndata: 2\n\ndata: 3\n\n"}, []string{"data: 1\n\ndata: 2\n\n", "data: 3\n\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var pieces [][]byte
			for _, p := range tc.pieces {
				pieces = append(pieces, []byte(p))
			}
			got := cutAll(tc.chunk, pieces...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("chunks = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCharChunkerCanFlushOnlyBetweenCharacters(t *testing.T) {
	c := NewChunker(ChunkSize{10, Chars})
	c.Cut([]byte("a\xe4\xbd"))
	if c.CanFlush() {
		t.Fatal("CanFlush inside a character")
	}
	c.Cut([]byte("\xa0"))
	if !c.CanFlush() {
		t.Fatal("!CanFlush after the character completed")
	}
}

// checkChunks asserts the properties every chunking must have: the chunks
// put together are the input, and each is whole in its unit.
func checkChunks(t *testing.T, c ChunkSize, input []byte, chunks []string) {
	t.Helper()
	if got := strings.Join(chunks, ""); got != string(input) {
		t.Fatalf("chunks joined differ from input: %q vs %q", got, input)
	}
	for i, ch := range chunks {
		last := i == len(chunks)-1
		switch c.Unit {
		case Bytes:
			if len(ch) != c.N && !(last && len(ch) < c.N) {
				t.Fatalf("chunk %d has %d bytes, want %d", i, len(ch), c.N)
			}
		case Chars:
			if utf8.Valid(input) {
				if !utf8.ValidString(ch) {
					t.Fatalf("chunk %d splits a character: %q", i, ch)
				}
				if n := utf8.RuneCountInString(ch); n != c.N && !(last && n < c.N) {
					t.Fatalf("chunk %d has %d chars, want %d", i, n, c.N)
				}
			}
		case Words:
			n := len(strings.FieldsFunc(ch, isASCIISpace))
			if n > c.N || !last && (n != c.N || !isASCIISpace(rune(ch[len(ch)-1])) || isASCIISpace(rune(chunks[i+1][0]))) {
				t.Fatalf("chunk %d is %q, not %d words and the whitespace after them", i, ch, c.N)
			}
		case Lines:
			n := strings.Count(ch, "\n")
			if n > c.N || !last && (n != c.N || !strings.HasSuffix(ch, "\n")) {
				t.Fatalf("chunk %d is %q, not %d lines", i, ch, c.N)
			}
		case Events:
			n, endsBlank := sseEvents(ch)
			if n > c.N || !last && (n != c.N || !endsBlank) {
				t.Fatalf("chunk %d is %q: %d events (ends with a blank line: %v), want %d", i, ch, n, endsBlank, c.N)
			}
		}
	}
}

func isASCIISpace(r rune) bool { return r < utf8.RuneSelf && isSpace(byte(r)) }

var sseLineEnd = regexp.MustCompile("\r\n|\r|\n")

// sseEvents counts the events a text holds, reading it line by line as the
// SSE format does, and tells whether it ends with the blank line of one.
func sseEvents(text string) (events int, endsBlank bool) {
	lines := sseLineEnd.Split(text, -1)
	hasContent := false
	for _, line := range lines[:len(lines)-1] { // the last is not ended
		endsBlank = false
		if line != "" {
			hasContent = true
		} else if hasContent {
			hasContent = false
			events++
			endsBlank = true
		}
	}
	return events, endsBlank && lines[len(lines)-1] == ""
}

// Every chunker has its own fuzz target, so that each gets the fuzzing time
// to itself: go test -fuzz '^FuzzChars$' ./pacing. Each checks that the chunks
// put together are the input, that every chunk is whole in its unit, that no
// valid character is ever split (in any unit but bytes), and that how the writes split
// the input does not change the chunks.
func FuzzBytes(f *testing.F) {
	fuzzChunker(f, Bytes, "hello, 世界! 😀 ok", "\xff\xe4\xbd\x80abc")
}

func FuzzChars(f *testing.F) {
	fuzzChunker(f, Chars, "hello, 世界! 😀 ok", "\xff\xe4\xbd\x80abc", "\xe4\xbd", "\xf0\x9f\x98a\xed\xa0\x80")
}

func FuzzWords(f *testing.F) {
	fuzzChunker(f, Words, "one two\t three\r\n four  ", "  lead\vand\ftrail ", "世界 hi\u00a0there")
}

func FuzzLines(f *testing.F) {
	fuzzChunker(f, Lines, "a\nb\r\n\nc", "\n\n\n", "no newline")
}

func FuzzEvents(f *testing.F) {
	fuzzChunker(f, Events, "data: a\r\n\r\n\n: c\r\rdata: b\n\n", "data: x\r", "\r\n\r\n\r\n", "event: e\ndata: 世界\n\n")
}

func fuzzChunker(f *testing.F, unit Unit, seeds ...string) {
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i), uint8(i*3+1))
	}
	f.Fuzz(func(t *testing.T, input []byte, n, split uint8) {
		c := ChunkSize{N: int(n%16) + 1, Unit: unit}
		// feed the input in pieces of a fuzzed size
		step := int(split%7) + 1
		var pieces [][]byte
		for rest := input; len(rest) > 0; {
			k := min(step, len(rest))
			pieces = append(pieces, rest[:k])
			rest = rest[k:]
		}
		chunks := cutAll(c, pieces...)
		checkChunks(t, c, input, chunks)
		if unit != Bytes { // a size in bytes may end anywhere
			checkCharsWhole(t, input, chunks)
		}
		// the same input in one piece cuts the same chunks
		if whole := cutAll(c, input); !slices.Equal(chunks, whole) {
			t.Fatalf("chunks depend on how writes split the input: %q vs %q", chunks, whole)
		}
	})
}

// checkCharsWhole asserts that no chunk boundary falls inside a valid UTF-8
// character of the input, whatever the unit and however invalid the bytes
// around it.
func checkCharsWhole(t *testing.T, input []byte, chunks []string) {
	t.Helper()
	cut := make(map[int]bool)
	at := 0
	for _, ch := range chunks {
		at += len(ch)
		cut[at] = true
	}
	for i := 0; i < len(input); {
		r, size := utf8.DecodeRune(input[i:])
		if r != utf8.RuneError || size > 1 {
			for j := i + 1; j < i+size; j++ {
				if cut[j] {
					t.Fatalf("a chunk ends inside the character %q at byte %d", input[i:i+size], i)
				}
			}
		}
		i += max(size, 1)
	}
}
