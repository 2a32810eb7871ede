package demo

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pathupdate/pathupdate/worker"
)

// Defaults of Config.ProgressEvery.
const (
	ProgressEveryInPlaceDefault = 200 * time.Millisecond // a terminal: one line rewritten
	ProgressEveryLinesDefault   = 3 * time.Second        // a file or a pipe: a line every few seconds
)

// progress reports how far the demo is while it runs: published, delivered,
// dead-lettered and in flight (published, not yet settled).
type progress struct {
	out       io.Writer
	inPlace   bool
	every     time.Duration
	total     int
	published atomic.Int64
	stats     func() worker.Stats
	width     int // of the last in-place line, to blank what a shorter one leaves
}

// line is the state in words; dead is the dead-letter count (the
// worker counts a dead letter once its original is acked, so the final
// report takes the count from the stream instead).
func (p *progress) line(delivered, dead uint64) string {
	pub := p.published.Load()
	inFlight := max(pub-int64(delivered)-int64(dead), 0)
	return fmt.Sprintf("published %d/%d, delivered %d, dead-lettered %d, in flight %d", pub, p.total, delivered, dead, inFlight)
}

func (p *progress) print(delivered, dead uint64) {
	l := p.line(delivered, dead)
	if !p.inPlace {
		fmt.Fprintln(p.out, l)
		return
	}
	pad := max(p.width-len(l), 0)
	p.width = len(l)
	fmt.Fprint(p.out, "\r"+l+strings.Repeat(" ", pad))
}

// run reports every p.every until stop is closed.
func (p *progress) run(stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s := p.stats()
			var dead uint64
			for _, n := range s.DeadLettered {
				dead += n
			}
			p.print(s.Delivered, dead)
		}
	}
}

// finish writes the final report, then ends the in-place line so that
// what follows starts on its own.
func (p *progress) finish(delivered, dead uint64) {
	p.print(delivered, dead)
	p.end()
}

// end ends an in-place line (after an error, too).
func (p *progress) end() {
	if p.inPlace && p.width > 0 {
		fmt.Fprintln(p.out)
		p.width = 0
	}
}
