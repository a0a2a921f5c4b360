//go:build !race

package pace

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// TestAPacedStreamKeepsTheHandlerStackIn16KiB checks that in a plain site a
// paced stream's handler goroutine never needs more than a 16 KiB stack, as
// plain Caddy's does not: one size class up, 32 KiB, for each of thousands
// of streams, is what writing the head from inside the pacer cost
// (BENCHMARKS.md). The race detector grows frames, so the check runs in
// builds without it; CI runs it so. A stack past the limit is a fatal error,
// so the check runs in a child process.
func TestAPacedStreamKeepsTheHandlerStackIn16KiB(t *testing.T) {
	if os.Getenv("PACE_STACK_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAPacedStreamKeepsTheHandlerStackIn16KiB$", "-test.v")
		cmd.Env = append(os.Environ(), "PACE_STACK_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			if len(out) > 4000 {
				out = out[:4000]
			}
			t.Fatalf("a paced stream outgrew a 16 KiB stack (%v):\n%s", err, out)
		}
		return
	}
	root := t.TempDir()
	body := randomBytes(3000, 3)
	if err := os.MkdirAll(filepath.Join(root, "paced"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "paced", "f.bin"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	base := startCaddyfile(t, "ADDR {\n root * "+root+"\n pace /paced/* {\n  rate 10KiB\n }\n file_server\n}")
	get(t, base+"/paced/f.bin") // Caddy's first request sets up what later ones share
	debug.SetMaxStack(16 << 10)
	defer debug.SetMaxStack(1 << 30)
	if r := get(t, base+"/paced/f.bin"); !bytes.Equal(r.body, body) || !isPaced(r) {
		t.Fatalf("%d bytes, paced %v", len(r.body), isPaced(r))
	}
}
