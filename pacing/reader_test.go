package pacing

import (
	"bytes"
	"context"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

func TestReaderPacesReadsToTheRate(t *testing.T) {
	body := bytes.Repeat([]byte("upload! "), 1250) // 10,000 bytes
	clock := &fakeClock{now: t0}
	r := NewReader(context.Background(), bytes.NewReader(body), 1000, time.Time{}, clock)
	var got []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 100 {
			t.Fatalf("a read of %d bytes, more than the 100-byte burst of 1000 B/s", n)
		}
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, body) {
		t.Fatal("body changed")
	}
	if took := clock.now.Sub(t0); took != 10*time.Second || r.Waited() != took {
		t.Fatalf("10,000 bytes at 1000 B/s took %v (waited %v), want 10s", took, r.Waited())
	}
	if err := iotest.TestReader(NewReader(context.Background(), bytes.NewReader(body), 1e6, time.Time{}, &fakeClock{now: t0}), body); err != nil {
		t.Fatal(err)
	}
}

func TestReaderStopsPacingAtTheDeadlineAndWhenTheContextEnds(t *testing.T) {
	clock := &fakeClock{now: t0}
	r := NewReader(context.Background(), bytes.NewReader(make([]byte, 1e6)), 1, t0.Add(3*time.Second), clock)
	if n, err := io.Copy(io.Discard, r); n != 1e6 || err != nil || clock.now.Sub(t0) != 3*time.Second {
		t.Fatalf("copied %d (%v) by %v; want all of 1 MB by the 3 s deadline", n, err, clock.now.Sub(t0))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r = NewReader(ctx, bytes.NewReader(make([]byte, 100)), 10, time.Time{}, &fakeClock{now: t0})
	if _, err := r.Read(make([]byte, 10)); err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
