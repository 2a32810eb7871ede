package pathupdate

import (
	"testing"
	"time"
)

// cpuClock is the process's CPU time (user and system, the embedded
// server's included) when a benchmark started: on a shared machine the
// CPU an event costs is steadier than the rate.
type cpuClock struct{ start time.Duration }

func processCPU(b *testing.B) cpuClock {
	b.Helper()
	return cpuClock{start: cpuTime(b)}
}

// report adds the CPU spent since the start per operation, where the
// platform tells it.
func (c cpuClock) report(b *testing.B) {
	b.Helper()
	if now := cpuTime(b); now > 0 {
		b.ReportMetric(float64((now-c.start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
