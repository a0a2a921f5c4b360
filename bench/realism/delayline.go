package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/caddy-pace/caddy-pace/pacing"
	"golang.org/x/sys/unix"
)

// The reference: a packet-level link between two network namespaces, for
// kernels without sch_netem. Each namespace has a TUN device; every IP
// packet one side sends is read from its TUN device, passes the stage of
// its direction, and is written to the other side's TUN device. A stage is
// what `netem delay RTT/2 rate R limit 1000` does: a rate stage with a
// bounded queue, then a fixed delay.

// A stage is one direction of the reference link. A packet of n bytes
// arriving at t leaves the rate stage at max(t, the last departure) +
// n/rate, and is delivered delay later; while limit packets wait in the rate
// stage, an arriving one is dropped, as from a full queue. It is not safe
// for concurrent use.
type stage struct {
	rate   float64 // bytes per second; 0 for no limit
	delay  time.Duration
	limit  int
	loss   float64        // the share of packets dropped at random, as netem's loss
	random func() float64 // for loss

	last       time.Time   // when the last admitted packet left the rate stage
	departures []time.Time // of the packets still in the rate stage, oldest first

	// With a trace, the rate stage delivers on the trace's opportunities
	// instead of at rate, as Mahimahi's mm-link does: each carries up to
	// 1500 bytes of the packets waiting, a packet may take the rest of one
	// and the start of the next, and one that finds nothing waiting is
	// lost. The trace starts with the first packet (either way, for the
	// way down: the trace is the link's, which the client's first packet
	// finds already there).
	trace *pacing.Trace
	zero  time.Time // the trace's start
	k     int64     // the opportunity being filled
	used  int       // bytes of it taken
}

// admit returns when a packet of n bytes that arrives at t is delivered, or
// false if it is dropped.
func (s *stage) admit(t time.Time, n int) (time.Time, bool) {
	if s.loss > 0 && s.random() < s.loss {
		return time.Time{}, false
	}
	gone := 0
	for gone < len(s.departures) && !s.departures[gone].After(t) {
		gone++
	}
	s.departures = s.departures[gone:]
	if s.limit > 0 && len(s.departures) >= s.limit {
		return time.Time{}, false
	}
	leave := t
	if s.last.After(leave) {
		leave = s.last
	}
	switch {
	case s.trace != nil:
		leave = s.onTrace(t, n)
	case s.rate > 0:
		leave = leave.Add(time.Duration(float64(n) / s.rate * float64(time.Second)))
	}
	s.last = leave
	s.departures = append(s.departures, leave)
	return leave.Add(s.delay), true
}

// onTrace returns when a packet of n bytes arriving at t leaves on the
// trace's opportunities.
func (s *stage) onTrace(t time.Time, n int) time.Time {
	if s.zero.IsZero() {
		s.zero = t
	}
	if d := t.Sub(s.zero); s.trace.At(s.k) < d {
		// The opportunities until now found nothing waiting.
		s.k, s.used = s.trace.Opportunities(d), 0
	}
	for {
		take := min(n, pacing.PacketSize-s.used)
		s.used, n = s.used+take, n-take
		leave := s.zero.Add(s.trace.At(s.k))
		if s.used == pacing.PacketSize {
			s.k, s.used = s.k+1, 0
		}
		if n == 0 {
			return leave
		}
	}
}

// A delayLine joins two TUN devices through a stage each way.
type delayLine struct {
	mu       sync.Mutex
	up, down stage // client to server, server to client
	dropped  [2]int
	log      []logged // with logging on: every packet, for -packets
	logging  bool
}

// A logged packet: when it arrived, which way (0 up, 1 down), its size,
// and when it was delivered (zero if dropped).
type logged struct {
	at        time.Time
	way, size int
	delivered time.Time
}

// startLog starts logging every packet afresh.
func (l *delayLine) startLog() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log, l.logging = l.log[:0], true
}

// writeLog writes the packets logged since startLog as CSV: ms since the
// first, the way, the size, ms until delivered (-1 if dropped).
func (l *delayLine) writeLog(path string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.logging = false
	var b strings.Builder
	b.WriteString("ms,way,size,delivered_ms\n")
	for _, p := range l.log {
		delivered := -1.0
		if !p.delivered.IsZero() {
			delivered = msSince(l.log[0].at, p.delivered)
		}
		fmt.Fprintf(&b, "%.3f,%s,%d,%.3f\n", msSince(l.log[0].at, p.at), [2]string{"up", "down"}[p.way], p.size, delivered)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func msSince(t0, t time.Time) float64 { return float64(t.Sub(t0)) / float64(time.Millisecond) }

// set changes the link's conditions, for the next packets: loss is the
// share of packets each way dropped at random.
func (l *delayLine) set(rtt time.Duration, down, up float64, limit int, loss float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = stage{rate: down, delay: rtt / 2, limit: limit, loss: loss, random: rand.Float64}
	l.up = stage{rate: up, delay: rtt / 2, limit: limit, loss: loss, random: rand.Float64}
	l.dropped = [2]int{}
}

// traceDown has the way down follow trace, from its next packet on, in
// place of its rate.
func (l *delayLine) traceDown(trace *pacing.Trace) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down.trace, l.down.zero, l.down.k, l.down.used = trace, time.Time{}, 0, 0
}

// run carries packets from the client's TUN device to the server's and back
// until one of them fails.
func (l *delayLine) run(client, server *os.File) error {
	errs := make(chan error, 2)
	go func() { errs <- l.carry(client, server, &l.up, 0) }()
	go func() { errs <- l.carry(server, client, &l.down, 1) }()
	return <-errs
}

type packet struct {
	at   time.Time
	data []byte
}

// carry reads packets from in, passes each through st, and writes it to out
// when it is due, in order.
func (l *delayLine) carry(in, out *os.File, st *stage, way int) error {
	due := make(chan packet, 1<<14)
	failed := make(chan error, 1)
	go func() {
		for p := range due {
			if d := time.Until(p.at); d > 0 {
				time.Sleep(d)
			}
			if _, err := out.Write(p.data); err != nil {
				failed <- err
				return
			}
		}
	}()
	buf := make([]byte, 1<<16)
	for {
		n, err := in.Read(buf)
		if err != nil {
			return err
		}
		l.mu.Lock()
		now := time.Now()
		if l.down.trace != nil && l.down.zero.IsZero() {
			l.down.zero = now // the first packet either way: the client's SYN
		}
		at, ok := st.admit(now, n)
		if !ok {
			l.dropped[way]++
			at = time.Time{}
		}
		if l.logging {
			l.log = append(l.log, logged{now, way, n, at})
		}
		l.mu.Unlock()
		if ok {
			select {
			case due <- packet{at, append([]byte(nil), buf[:n]...)}:
			case err := <-failed:
				return err
			}
		}
	}
}

// openTUN attaches to the TUN device dev in the network namespace ns, which
// `ip netns add` made, and returns it.
func openTUN(ns, dev string) (*os.File, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(self)
	target, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("entering %s: %w", ns, err)
	}
	// Back to this process's namespace before the thread runs anything else.
	defer func() {
		if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
			panic(err)
		}
	}()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(dev)
	if err != nil {
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attaching to %s in %s: %w", dev, ns, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), dev), nil
}
