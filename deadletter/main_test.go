package deadletter

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it started: servers, connections, goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
