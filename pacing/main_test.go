package pacing

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is left running after
// them: a Pacer or Reader that left a timer's goroutine or a sleeper behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
