package main

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, in which /proc/<pid>/stat counts CPU time: 100 on
// every Linux that Go supports.
const clockTicks = 100

// cpuSeconds is the user and system CPU time that the processes have used.
func cpuSeconds(pids []int) float64 {
	var total float64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// the fields after the command, which is in parentheses and may
		// hold spaces: state is field 3, utime 14, stime 15
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		total += (utime + stime) / clockTicks
	}
	return total
}

// rssBytes is the processes' resident memory, summed.
func rssBytes(pids []int) float64 {
	var total float64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kib, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				total += kib * 1024
			}
		}
	}
	return total
}

// sampler tracks the peak of the processes' summed RSS above where it
// started, sampled every 50 ms.
type sampler struct {
	pids []int
	base float64
	done chan struct{}
	wg   sync.WaitGroup
	peak float64
}

func startSampling(pids []int) *sampler {
	s := &sampler{pids: pids, base: rssBytes(pids), done: make(chan struct{})}
	if len(pids) == 0 {
		return s
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
				s.peak = max(s.peak, rssBytes(s.pids)-s.base)
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the peak above the start, in bytes.
func (s *sampler) stop() float64 {
	close(s.done)
	s.wg.Wait()
	return s.peak
}
