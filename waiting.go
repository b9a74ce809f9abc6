package ctxsync

// Waiting returns how many Lock calls are in line now and not yet granted,
// counting one whose context has just ended but that has not left the line
// yet. It is a snapshot for metrics and load shedding, and allocates
// nothing.
func (l *Lock) Waiting() int {
	// lockWaiters is raised under mu before the first waiter is pushed and
	// dropped under mu once the line is empty, so a clear bit means an
	// empty line at the moment of the load, and the common case needs no
	// lock.
	if l.state.Load()&lockWaiters == 0 {
		return 0
	}
	// The line itself is guarded by mu.
	l.mu.Lock()
	n := l.waiters.Len()
	l.mu.Unlock()
	return n
}

// Waiting returns how many AcquireN calls are in line now and not yet
// granted, counting one whose context has just ended but that has not left
// the line yet. It is a snapshot for metrics and load shedding, and
// allocates nothing.
func (s *Semaphore) Waiting() int { return s.s.waiting() }

// Waiting returns how many AcquireN calls are in line now and not yet
// granted, counting one whose context has just ended but that has not left
// the line yet. Requests above the bound never wait, so they are never
// counted. It is a snapshot for metrics and load shedding, and allocates
// nothing.
func (s *BoundedSemaphore) Waiting() int { return s.s.waiting() }

func (s *sema) waiting() int {
	// semaWaiters is raised under mu before a waiter is pushed, and only
	// dropped under mu once the line is empty: a clear bit means nobody
	// was in line at the moment of the load.
	if s.state.Load()&semaWaiters == 0 {
		return 0
	}
	s.mu.Lock()
	n := s.waiters.Len()
	s.mu.Unlock()
	return n
}
