package pacing

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// The hot path of a paced stream, per chunk: cut the chunk, reserve its slot
// (schedule, budget), wait (a fake clock that only moves the time), write it
// and flush. b.N counts chunks; the bytes/s reported is body throughput with
// the waits taken out, so it is what pacing itself costs. Run with
//
//	go test -run '^$' -bench . -benchmem ./pacing
func BenchmarkPacer(b *testing.B) {
	text := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. 你好, 世界!\n", 200))
	sse := []byte(strings.Repeat("data: a token\n\n", 600))
	tests := []struct {
		name string
		plan Plan
		body []byte
	}{
		{"bytes 1KiB interval", Plan{Chunk: ChunkSize{N: 1024}, Interval: 100 * time.Millisecond}, make([]byte, 64<<10)},
		{"bytes rate 10KiB", Plan{Chunk: RateChunk(10 << 10), Rate: 10 << 10}, make([]byte, 64<<10)},
		{"bytes 1KiB interval and rate", Plan{Chunk: ChunkSize{N: 1024}, Interval: 100 * time.Millisecond, Rate: 10 << 10}, make([]byte, 64<<10)},
		{"chars 5 interval", Plan{Chunk: ChunkSize{N: 5, Unit: Chars}, Interval: 100 * time.Millisecond}, text},
		{"words 3 interval", Plan{Chunk: ChunkSize{N: 3, Unit: Words}, Interval: 100 * time.Millisecond}, text},
		{"events 1 interval", Plan{Chunk: ChunkSize{N: 1, Unit: Events}, Interval: 100 * time.Millisecond}, sse},
		{"bytes 1KiB shared rate", Plan{Chunk: ChunkSize{N: 1024}, Shared: NewBudget(10<<10, 1024)}, make([]byte, 64<<10)},
	}
	for _, tc := range tests {
		chunks := len(cutAll(tc.plan.Chunk, tc.body))
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			clock := &fakeClock{now: t0}
			flush := func() error { return nil }
			src := bytes.NewReader(tc.body)
			b.SetBytes(int64(len(tc.body)) / int64(chunks))
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += chunks {
				src.Reset(tc.body)
				p := NewPacer(ctx, io.Discard, flush, tc.plan, clock)
				if _, err := p.ReadFrom(src); err != nil {
					b.Fatal(err)
				}
				p.Close()
			}
		})
	}
}
