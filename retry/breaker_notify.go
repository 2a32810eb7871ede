package retry

// notify tells Logger and OnChange about queued changes, outside the lock
// (OnChange may call State) and in order: only one goroutine drains at a
// time, and one that finds another draining leaves its changes to it.
func (b *Breaker) notify() {
	b.mu.Lock()
	if b.notifying {
		b.mu.Unlock()
		return
	}
	b.notifying = true
	drained := false
	defer func() {
		if !drained { // OnChange panicked: let the next notify drain
			b.mu.Lock()
			b.notifying = false
			b.mu.Unlock()
		}
	}()
	for len(b.pending) > 0 {
		t := b.pending[0]
		b.pending = b.pending[1:]
		b.mu.Unlock()
		b.log(t)
		if b.cfg.OnChange != nil {
			b.cfg.OnChange(t.from, t.to)
		}
		b.mu.Lock()
	}
	// Cleared under the same lock that saw pending empty: a change queued
	// after this point finds notifying false and drains itself.
	b.notifying = false
	drained = true
	b.mu.Unlock()
}

func (b *Breaker) log(t transition) {
	switch t.to {
	case Open:
		b.cfg.Logger.Warn().Str("from", t.from.String()).Str("cause", t.cause).Time("until", t.until).
			Msg("circuit breaker open: delivery paused for every event")
	case HalfOpen:
		b.cfg.Logger.Info().Msg("circuit breaker half-open: sending one probe")
	case Closed:
		b.cfg.Logger.Info().Str("from", t.from.String()).Str("cause", t.cause).
			Msg("circuit breaker closed: delivery resumed")
	}
}
