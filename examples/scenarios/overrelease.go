package scenarios

import (
	"fmt"
	"io"

	"github.com/ctxsync/ctxsync"
)

// OverRelease shows a Release too many: a Semaphore silently grows, so the
// limit it was meant to keep is gone, while a BoundedSemaphore catches the
// bug at the faulty call.
func OverRelease(w io.Writer) (result error) {
	out := newReport(w)
	defer out.check(&result)
	const limit = 3
	plain := ctxsync.NewSemaphore(limit)
	buggyWorker(plain)
	buggyWorker(plain)
	out.printf("Semaphore(%d) after two buggy workers: %d permits free, the limit is gone\n", limit, plain.Available())

	bounded := ctxsync.NewBoundedSemaphore(limit)
	caught := func() (msg any) {
		defer func() { msg = recover() }()
		buggyWorker(bounded)
		return nil
	}()
	out.printf("BoundedSemaphore(%d): caught at once: %v\n", limit, caught)
	out.printf("  and still %d permits free\n", bounded.Available())

	if err := expect("Semaphore permits after over-release", plain.Available(), limit+2); err != nil {
		return err
	}
	if caught == nil {
		return fmt.Errorf("BoundedSemaphore did not catch the over-release")
	}
	return expect("BoundedSemaphore permits", bounded.Available(), limit)
}

// buggyWorker releases on every path, also on one where it never acquired.
func buggyWorker(s interface{ Release() }) {
	// ... forgot to Acquire on this path ...
	s.Release()
}
