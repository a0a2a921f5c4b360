package pace

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/caddy-pace/caddy-pace/pacing"
)

// Traces are read once and kept, for as long as their file is the same
// (size and modification time), so that a per-request trace costs no read
// and a reload that keeps one keeps its links.
var traces = struct {
	sync.Mutex
	m map[string]cachedTrace
}{m: map[string]cachedTrace{}}

type cachedTrace struct {
	size    int64
	modTime time.Time
	trace   *pacing.Trace
}

// maxTraces bounds the traces kept.
const maxTraces = 64

// loadTrace reads the trace at path, or takes it from the cache. An error
// names the file, and the line.
func loadTrace(path string) (*pacing.Trace, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", path, err)
	}
	traces.Lock()
	defer traces.Unlock()
	if c, ok := traces.m[path]; ok && c.size == info.Size() && c.modTime.Equal(info.ModTime()) {
		return c.trace, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", path, err)
	}
	defer f.Close()
	t, err := pacing.ParseTrace(f)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", path, err)
	}
	if len(traces.m) >= maxTraces {
		clear(traces.m)
	}
	traces.m[path] = cachedTrace{info.Size(), info.ModTime(), t}
	return t, nil
}
