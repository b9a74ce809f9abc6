package scenarios

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/ctxsync/ctxsync"
)

// DatabaseInit shows queries that arrive before the database connection is
// ready: each WaitFor-s the connection under a Condition, so none runs
// early, and all run once Connect has finished its handshake.
func DatabaseInit(w io.Writer) (result error) {
	out := newReport(w)
	defer out.check(&result)
	ctx := context.Background()
	db := &Database{}
	results := make(chan string, 5)
	var wg sync.WaitGroup
	for i := 1; i <= 5; i++ {
		wg.Go(func() {
			r, err := db.Query(ctx, fmt.Sprintf("SELECT %d", i))
			if err != nil {
				results <- "failed: " + err.Error()
				return
			}
			results <- r
		})
	}
	steps := db.Connect(ctx)
	wg.Wait()
	close(results)
	var lines []string
	for r := range results {
		lines = append(lines, r)
	}
	slices.Sort(lines)
	out.printf("connect: %v\n", steps)
	for _, l := range lines {
		out.println(" ", l)
	}
	for _, l := range lines {
		if err := expect("query result", l[len(l)-len("(connection ready)"):], "(connection ready)"); err != nil {
			return err
		}
	}
	return expect("queries answered", len(lines), 5)
}

// Database is a connection that takes a while to initialize.
type Database struct {
	ready     ctxsync.Condition // zero value: a Lock of its own
	connected bool
}

// Connect performs the handshake and wakes the queries waiting for it.
func (db *Database) Connect(ctx context.Context) []string {
	steps := []string{"dial", "authenticate", "select schema"}
	if err := db.ready.Lock(ctx); err != nil {
		return nil
	}
	defer db.ready.Unlock()
	db.connected = true
	db.ready.NotifyAll()
	return steps
}

// Query waits for the connection, then runs q.
func (db *Database) Query(ctx context.Context, q string) (string, error) {
	if err := db.ready.Lock(ctx); err != nil {
		return "", err
	}
	defer db.ready.Unlock()
	if err := db.ready.WaitFor(ctx, func() bool { return db.connected }); err != nil {
		return "", err
	}
	return q + " (connection ready)", nil
}
