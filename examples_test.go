package ctxsync_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctxsync/ctxsync"
)

// A Lock guards a read-modify-write that spans a blocking call, and a
// caller that cannot wait long gives up through its context.
func ExampleLock() {
	var mu ctxsync.Lock
	balance := 100

	withdraw := func(ctx context.Context, amount int) error {
		if err := mu.Lock(ctx); err != nil {
			return err
		}
		defer mu.Unlock()
		b := balance
		time.Sleep(time.Millisecond) // a slow call in the middle
		balance = b - amount
		return nil
	}

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { _ = withdraw(context.Background(), 10) })
	}
	wg.Wait()
	fmt.Println("balance:", balance)

	// Someone holds the lock; a caller with a deadline gives up.
	_ = mu.Lock(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	fmt.Println(withdraw(ctx, 10))
	mu.Unlock()
	// Output:
	// balance: 0
	// context deadline exceeded
}

// configCache is read by many request handlers at once and reloaded now
// and then by one writer.
type configCache struct {
	mu       ctxsync.RWLock
	settings map[string]string
	version  int
}

// Get reads a setting under a read lock; a handler whose request is
// cancelled does not wait behind a reload.
func (c *configCache) Get(ctx context.Context, key string) (string, error) {
	if err := c.mu.RLock(ctx); err != nil {
		return "", err
	}
	defer c.mu.RUnlock()
	return c.settings[key], nil
}

// Reload swaps in new settings under the write lock, giving up after
// timeout rather than stalling the reloader behind a long reader. It then
// downgrades to a read lock to log what it installed: no other reload can
// get in between, and readers waiting behind it go on at once.
func (c *configCache) Reload(timeout time.Duration, settings map[string]string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.mu.Lock(ctx); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	c.settings = settings
	c.version++
	c.mu.Downgrade()
	defer c.mu.RUnlock()
	fmt.Println("installed version", c.version, "with", len(c.settings), "settings")
	return nil
}

func ExampleRWLock() {
	c := &configCache{settings: map[string]string{"region": "eu"}}
	ctx := context.Background()

	// A long report holds a read lock; a reload cannot wait that long.
	_ = c.mu.RLock(ctx)
	err := c.Reload(10*time.Millisecond, map[string]string{"region": "us"})
	fmt.Println(err, errors.Is(err, context.DeadlineExceeded))
	region, _ := c.Get(ctx, "region") // readers still share the lock
	fmt.Println("region:", region, "readers:", c.mu.Readers())
	c.mu.RUnlock()

	// Once the report is done, the reload goes through.
	_ = c.Reload(time.Second, map[string]string{"region": "us", "tier": "gold"})
	region, _ = c.Get(ctx, "region")
	fmt.Println("region:", region)
	// Output:
	// reload: context deadline exceeded true
	// region: eu readers: 1
	// installed version 1 with 2 settings
	// region: us
}

// A Semaphore lets at most three workers call a rate-limited service at a
// time.
func ExampleSemaphore() {
	sem := ctxsync.NewSemaphore(3)
	var mu sync.Mutex
	running, most := 0, 0

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := sem.Acquire(context.Background()); err != nil {
				return
			}
			defer sem.Release()
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			time.Sleep(time.Millisecond) // the call to the service
			mu.Lock()
			running--
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Println("more than 3 at once:", most > 3, "- free permits:", sem.Available())
	// Output: more than 3 at once: false - free permits: 3
}

// A weighted request takes several permits at once; while it waits, smaller
// requests queue behind it instead of overtaking it, so a stream of small
// jobs cannot starve a big one.
func ExampleSemaphore_AcquireN() {
	ctx := context.Background()
	memory := ctxsync.NewSemaphore(10) // say, megabytes of a buffer pool
	_ = memory.AcquireN(ctx, 6)        // a running job holds 6

	big := make(chan error, 1)
	go func() { big <- memory.AcquireN(ctx, 8) }() // only 4 free: it waits
	for !memory.Locked() {                         // until it stands in line
		runtime.Gosched()
	}
	fmt.Println("free:", memory.Available())
	fmt.Println("small job may start:", memory.TryAcquireN(2))

	memory.ReleaseN(6) // the running job ends: the big one goes first
	fmt.Println("big job started:", <-big == nil, "- free:", memory.Available())
	memory.ReleaseN(8)
	// Output:
	// free: 4
	// small job may start: false
	// big job started: true - free: 2
}

// A BoundedSemaphore catches a Release that has no matching Acquire, which a
// plain Semaphore would silently count as an extra permit.
func ExampleBoundedSemaphore() {
	plain := ctxsync.NewSemaphore(2)
	plain.Release() // a bug: nothing was acquired
	fmt.Println("Semaphore grew to", plain.Available())

	bounded := ctxsync.NewBoundedSemaphore(2)
	defer func() { fmt.Println("BoundedSemaphore:", recover()) }()
	bounded.Release()
	// Output:
	// Semaphore grew to 3
	// BoundedSemaphore: ctxsync: BoundedSemaphore released more permits than are held
}

// An event bus: listeners wait for a named event with On, and Trigger wakes
// all of them at once.
func ExampleEvent() {
	bus := newEventBus()
	ctx := context.Background()

	heard := make(chan string, 2)
	var wg sync.WaitGroup
	for _, listener := range []string{"mailer", "audit log"} {
		wg.Go(func() {
			if err := bus.On(ctx, "order.placed"); err == nil {
				heard <- listener + " heard order.placed"
			}
		})
	}
	bus.Trigger("order.placed")
	wg.Wait()
	close(heard)
	var lines []string
	for line := range heard {
		lines = append(lines, line)
	}
	slices.Sort(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// audit log heard order.placed
	// mailer heard order.placed
}

// eventBus maps event names to Events.
type eventBus struct {
	mu     sync.Mutex
	events map[string]*ctxsync.Event
}

func newEventBus() *eventBus { return &eventBus{events: map[string]*ctxsync.Event{}} }

func (b *eventBus) event(name string) *ctxsync.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.events[name]
	if !ok {
		e = new(ctxsync.Event)
		b.events[name] = e
	}
	return e
}

// On waits until the named event has been triggered.
func (b *eventBus) On(ctx context.Context, name string) error { return b.event(name).Wait(ctx) }

// Trigger wakes everyone waiting for the named event, and those who come later.
func (b *eventBus) Trigger(name string) { b.event(name).Set() }

// An upload-finished signal: the notifier waits for the upload, and gives
// up if it takes too long.
func ExampleEvent_Wait() {
	var uploaded ctxsync.Event
	go func() {
		// ... send the file ...
		uploaded.Set()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := uploaded.Wait(ctx); err != nil {
		fmt.Println("upload did not finish:", err)
		return
	}
	fmt.Println("upload finished: telling the user")

	// A select can wait for the event too.
	select {
	case <-uploaded.Done():
		fmt.Println("done channel closed")
	case <-ctx.Done():
	}
	// Output:
	// upload finished: telling the user
	// done channel closed
}

// Queries wait for a database connection to finish initializing: WaitFor
// checks the condition under the lock, so no query runs too early.
func ExampleCondition_WaitFor() {
	db := &database{}
	ctx := context.Background()

	results := make(chan string, 3)
	var wg sync.WaitGroup
	for _, q := range []string{"SELECT 1", "SELECT 2", "SELECT 3"} {
		wg.Go(func() {
			if r, err := db.Query(ctx, q); err == nil {
				results <- r
			}
		})
	}
	db.Connect(ctx)
	wg.Wait()
	close(results)
	var lines []string
	for r := range results {
		lines = append(lines, r)
	}
	slices.Sort(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// SELECT 1 ran on a ready connection
	// SELECT 2 ran on a ready connection
	// SELECT 3 ran on a ready connection
}

type database struct {
	ready ctxsync.Condition // its zero value has a Lock of its own
	open  bool
}

func (db *database) Connect(ctx context.Context) {
	// ... dial, authenticate ...
	if err := db.ready.Lock(ctx); err != nil {
		return
	}
	db.open = true
	db.ready.NotifyAll()
	db.ready.Unlock()
}

func (db *database) Query(ctx context.Context, q string) (string, error) {
	if err := db.ready.Lock(ctx); err != nil {
		return "", err
	}
	defer db.ready.Unlock()
	if err := db.ready.WaitFor(ctx, func() bool { return db.open }); err != nil {
		return "", err
	}
	return q + " ran on a ready connection", nil
}

// A Barrier lines workers up between phases: no worker starts phase 2
// before every worker has finished phase 1.
func ExampleBarrier() {
	const workers = 3
	barrier := ctxsync.NewBarrier(workers)
	var mu sync.Mutex
	var log []int // the phase of each step, in the order they happen

	step := func(phase int) {
		mu.Lock()
		log = append(log, phase)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			step(1)
			if _, err := barrier.Wait(context.Background()); err != nil {
				return
			}
			step(2)
		})
	}
	wg.Wait()
	fmt.Println("phases in order:", slices.IsSorted(log), "- steps:", len(log))
	// Output: phases in order: true - steps: 6
}

// The classic wait loop: a consumer holds the lock, re-checks its condition
// after each Wait, and a producer notifies after changing the state.
func ExampleCondition() {
	var cond ctxsync.Condition
	var jobs []string
	ctx := context.Background()

	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := cond.Lock(ctx); err != nil {
			return
		}
		defer cond.Unlock()
		for len(jobs) == 0 {
			if err := cond.Wait(ctx); err != nil {
				return // Wait returns with the lock held, also on error
			}
		}
		fmt.Println("got", jobs[0])
	}()

	_ = cond.Lock(ctx)
	jobs = append(jobs, "job 1")
	cond.Notify(1)
	cond.Unlock()
	<-done
	// Output: got job 1
}

// Producer and consumers with Join: the producer waits until every item it
// put has been processed, then shuts the queue down so the workers leave.
func ExampleQueue() {
	ctx := context.Background()
	q := ctxsync.NewQueue[int](4)
	var mu sync.Mutex
	sum := 0

	var workers sync.WaitGroup
	for range 3 {
		workers.Go(func() {
			for {
				n, err := q.Get(ctx)
				if err != nil {
					return // ErrQueueShutDown: nothing left to do
				}
				mu.Lock()
				sum += n
				mu.Unlock()
				q.TaskDone()
			}
		})
	}
	for n := 1; n <= 100; n++ {
		if err := q.Put(ctx, n); err != nil {
			return
		}
	}
	if err := q.Join(ctx); err != nil {
		return
	}
	fmt.Println("all processed, sum:", sum)
	q.Shutdown()
	workers.Wait()
	// Output: all processed, sum: 5050
}

// A priority job queue: the most urgent job leaves first, and jobs of equal
// priority leave in the order they came.
func ExampleNewPriorityQueue() {
	type job struct {
		priority int // lower is more urgent
		name     string
	}
	jobs := ctxsync.NewPriorityQueue(0, func(a, b job) bool { return a.priority < b.priority })
	for _, j := range []job{{2, "send newsletter"}, {0, "page on-call"}, {1, "resize images"}, {0, "restart web"}} {
		_ = jobs.TryPut(j)
	}
	for !jobs.Empty() {
		j, _ := jobs.TryGet()
		fmt.Println(j.priority, j.name)
	}
	// Output:
	// 0 page on-call
	// 0 restart web
	// 1 resize images
	// 2 send newsletter
}

// A LIFO queue hands out the most recent item first.
func ExampleNewLifoQueue() {
	stack := ctxsync.NewLifoQueue[string](0)
	for _, page := range []string{"home", "products", "cart"} {
		_ = stack.TryPut(page)
	}
	back, _ := stack.TryGet()
	fmt.Println("back from", back)
	// Output: back from cart
}

// Graceful shutdown of a worker pool: Shutdown lets the workers finish the
// jobs already queued, while ShutdownNow would hand the unstarted jobs back.
func ExampleQueue_Shutdown() {
	ctx := context.Background()
	q := ctxsync.NewQueue[string](0)
	for _, j := range []string{"a", "b", "c"} {
		_ = q.TryPut(j)
	}
	q.Shutdown()
	fmt.Println("put after shutdown:", q.TryPut("d"))

	done := make(chan []string)
	go func() {
		var handled []string
		for {
			j, err := q.Get(ctx)
			if err != nil {
				fmt.Println("worker stops:", err)
				done <- handled
				return
			}
			handled = append(handled, j)
			q.TaskDone()
		}
	}()
	fmt.Println("handled:", <-done)
	fmt.Println("join:", q.Join(ctx))
	// Output:
	// put after shutdown: ctxsync: queue shut down
	// worker stops: ctxsync: queue shut down
	// handled: [a b c]
	// join: <nil>
}

// A clean stop of a service built on a worker pool, in the order that loses
// nothing: stop the producers, Shutdown so that no new job comes in, let
// the workers drain what is queued (their context is not the one that says
// stop, or they would abandon queued jobs), Join with a timeout to bound the
// drain, and take back with ShutdownNow whatever is still queued after it,
// to save or hand on.
func ExampleQueue_cleanStop() {
	stop, stopService := context.WithCancel(context.Background())
	q := ctxsync.NewQueue[int](8)

	work := context.WithoutCancel(stop) // the workers' context: stop does not end it
	var processed atomic.Int64
	var workers sync.WaitGroup
	for range 3 {
		workers.Go(func() {
			for {
				if _, err := q.Get(work); err != nil {
					return // ErrQueueShutDown: shut down and drained
				}
				processed.Add(1) // the job
				q.TaskDone()
			}
		})
	}
	var put atomic.Int64
	producer := make(chan struct{})
	go func() {
		defer close(producer)
		for n := 0; ; n++ {
			if q.Put(stop, n) != nil {
				return // stopped
			}
			put.Add(1)
		}
	}()

	for put.Load() < 100 { // the service runs for a while
		runtime.Gosched()
	}
	stopService()
	<-producer   // 1. the producers have stopped
	q.Shutdown() // 2. nothing new comes in; the workers drain the rest
	drain, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("drained:", q.Join(drain)) // 3. every job put is done, or time is up
	left := q.ShutdownNow()                // 4. whatever is still queued
	workers.Wait()
	fmt.Println("left for later:", len(left))
	fmt.Println("every job processed or handed back:", processed.Load()+int64(len(left)) == put.Load())
	// Output:
	// drained: <nil>
	// left for later: 0
	// every job processed or handed back: true
}

// A limit on requests in flight, lowered and raised at run time. Requests
// already in flight finish normally; the permits above a lowered limit are
// retired as they come back, and a raised limit lets waiters in at once.
func ExampleBoundedSemaphore_SetBound() {
	ctx := context.Background()
	inFlight := ctxsync.NewBoundedSemaphore(3)
	_ = inFlight.AcquireN(ctx, 3) // three requests in flight

	inFlight.SetBound(1) // the backend is struggling
	fmt.Println("bound", inFlight.Bound(), "available", inFlight.Available())
	inFlight.Release()
	inFlight.Release()
	fmt.Println("two done, available", inFlight.Available())

	// A new request waits for room; raising the limit serves it at once.
	batch := make(chan error, 1)
	go func() { batch <- inFlight.Acquire(ctx) }()
	for inFlight.Waiting() == 0 {
		runtime.Gosched() // until the batch is in line
	}
	inFlight.SetBound(4)
	fmt.Println("raised:", <-batch, "available", inFlight.Available())

	// A waiting request that a lower limit can never serve fails at once.
	big := make(chan error, 1)
	go func() { big <- inFlight.AcquireN(ctx, 4) }()
	for inFlight.Waiting() == 0 {
		runtime.Gosched()
	}
	inFlight.SetBound(3)
	fmt.Println("lowered:", <-big)
	inFlight.ReleaseN(2)
	fmt.Println("all done, available", inFlight.Available())
	// Output:
	// bound 1 available 0
	// two done, available 0
	// raised: <nil> available 2
	// lowered: ctxsync: request exceeds semaphore bound
	// all done, available 3
}

// A bulk writer takes up to 100 rows at a time, so that each insert
// carries as many rows as are waiting, and counts every row done for Join.
func ExampleQueue_GetMany() {
	ctx := context.Background()
	rows := ctxsync.NewQueue[string](0)
	for i := range 250 {
		_ = rows.Put(ctx, fmt.Sprintf("row %d", i))
	}
	rows.Shutdown() // no more rows; the writer drains what is there

	batch := make([]string, 100) // reused: GetMany allocates nothing
	for {
		n, err := rows.GetMany(ctx, batch)
		if err != nil {
			fmt.Println("writer stops:", err)
			break
		}
		fmt.Printf("insert %d rows, %s .. %s\n", n, batch[0], batch[n-1])
		for range n {
			rows.TaskDone() // one per row
		}
	}
	fmt.Println("join:", rows.Join(ctx))
	// Output:
	// insert 100 rows, row 0 .. row 99
	// insert 100 rows, row 100 .. row 199
	// insert 50 rows, row 200 .. row 249
	// writer stops: ctxsync: queue shut down
	// join: <nil>
}

// A server sheds load when too many requests already wait for a worker,
// instead of letting its latency grow without end.
func ExampleSemaphore_Waiting() {
	workers := ctxsync.NewSemaphore(1)
	const maxWaiting = 2
	handle := func(ctx context.Context) error {
		if workers.Waiting() >= maxWaiting {
			return fmt.Errorf("busy: %d waiting", workers.Waiting())
		}
		if err := workers.Acquire(ctx); err != nil {
			return err
		}
		defer workers.Release()
		return nil
	}

	_ = workers.Acquire(context.Background()) // the one worker is busy
	results := make(chan error, maxWaiting)
	for range maxWaiting {
		go func() { results <- handle(context.Background()) }()
	}
	for workers.Waiting() < maxWaiting {
		runtime.Gosched() // until both are in line
	}
	fmt.Println(handle(context.Background()))
	workers.Release()
	for range maxWaiting {
		fmt.Println(<-results)
	}
	// Output:
	// busy: 2 waiting
	// <nil>
	// <nil>
}

// Acquire a permit or give up after a timeout, in a select: the ticket's
// Ready next to a timer. A permit granted just as we give up is given back.
func ExampleSemaphore_AcquireTicket() {
	sem := ctxsync.NewSemaphore(1)
	_ = sem.TryAcquire() // someone else holds the only permit

	acquireWithin := func(d time.Duration) error {
		t := sem.AcquireTicket(1)
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-t.Ready():
			return t.Err() // nil: we hold the permit
		case <-timer.C:
			if !t.Stop() && t.Err() == nil {
				sem.Release() // granted as we gave up: give it back
			}
			return fmt.Errorf("no permit within %v", d)
		}
	}

	fmt.Println(acquireWithin(10 * time.Millisecond))
	sem.Release() // the other holder is done
	fmt.Println(acquireWithin(10*time.Millisecond), sem.Available())
	sem.Release()

	// A request that can never be served is decided at once.
	bounded := ctxsync.NewBoundedSemaphore(2)
	fmt.Println(bounded.AcquireTicket(3).Err())
	// Output:
	// no permit within 10ms
	// <nil> 0
	// ctxsync: request exceeds semaphore bound
}

// Take an item from whichever of two queues has one first. The ticket on
// the other queue is stopped; if it was handed an item meanwhile, that item
// is ours too and is handled, not lost.
func ExampleQueue_GetTicket() {
	var urgent, normal ctxsync.Queue[string]

	takeFirst := func(ctx context.Context) ([]string, error) {
		u, n := urgent.GetTicket(), normal.GetTicket()
		select {
		case <-u.Ready():
		case <-n.Ready():
		case <-ctx.Done():
		}
		var got []string
		for _, t := range []*ctxsync.GetTicket[string]{u, n} {
			// Stop returns false once the Get is decided: then, with a
			// nil Err, the item was handed to us.
			if !t.Stop() && t.Err() == nil {
				got = append(got, t.Item())
			}
		}
		if len(got) == 0 {
			return nil, ctx.Err()
		}
		return got, nil
	}

	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = normal.Put(ctx, "report") // arrives while we wait
	}()
	got, _ := takeFirst(ctx)
	<-done
	fmt.Println(got)

	_ = urgent.TryPut("page the on-call")
	got, _ = takeFirst(ctx)
	fmt.Println(got)

	expired, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	_, err := takeFirst(expired)
	fmt.Println(err)
	// Output:
	// [report]
	// [page the on-call]
	// context deadline exceeded
}

// Give up waiting for a lock when a shutdown channel closes: the ticket
// waits in a select next to that channel, which no context need stand for.
func ExampleLock_LockTicket() {
	var mu ctxsync.Lock
	shutdown := make(chan struct{})

	_ = mu.Lock(context.Background()) // a long job holds the lock

	result := make(chan string)
	go func() {
		t := mu.LockTicket()
		select {
		case <-t.Ready():
			defer mu.Unlock()
			result <- "got the lock"
		case <-shutdown:
			if !t.Stop() && t.Err() == nil {
				mu.Unlock() // handed over as we gave up
			}
			result <- "gave up: shutting down"
		}
	}()

	close(shutdown)
	fmt.Println(<-result)
	mu.Unlock() // the long job ends
	fmt.Println("locked after the job:", mu.Locked())
	// Output:
	// gave up: shutting down
	// locked after the job: false
}

// A KeyedLock serializes updates to one account at a time, while updates to
// other accounts go on in parallel; an account's lock takes memory only
// while someone holds it or waits for it.
func ExampleKeyedLock() {
	var rows ctxsync.KeyedLock[string]
	balances := map[string]int{"alice": 100, "bob": 100}
	var mu sync.Mutex // guards the map itself, not the read-modify-write

	withdraw := func(ctx context.Context, user string, amount int) error {
		if err := rows.Lock(ctx, user); err != nil {
			return err
		}
		defer rows.Unlock(user)
		mu.Lock()
		b := balances[user]
		mu.Unlock()
		time.Sleep(time.Millisecond) // a slow call in the middle
		mu.Lock()
		balances[user] = b - amount
		mu.Unlock()
		return nil
	}

	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { _ = withdraw(context.Background(), "alice", 10) })
		wg.Go(func() { _ = withdraw(context.Background(), "bob", 20) })
	}
	wg.Wait()
	fmt.Println("alice:", balances["alice"], "bob:", balances["bob"])
	fmt.Println("keys in memory:", rows.Len())

	// Someone holds bob's row; a caller with a deadline gives up.
	_ = rows.Lock(context.Background(), "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	fmt.Println(withdraw(ctx, "bob", 10))
	fmt.Println("alice is free:", rows.TryLock("alice"))
	rows.Unlock("alice")
	rows.Unlock("bob")
	// Output:
	// alice: 50 bob: 0
	// keys in memory: 0
	// context deadline exceeded
	// alice is free: true
}

// A KeyedSemaphore allows at most two requests in flight per host, however
// many hosts there are.
func ExampleKeyedSemaphore() {
	perHost := ctxsync.NewKeyedSemaphore[string](2)
	ctx := context.Background()

	_ = perHost.Acquire(ctx, "a.example")
	_ = perHost.Acquire(ctx, "a.example")
	fmt.Println("a.example has room:", perHost.TryAcquire("a.example"))
	fmt.Println("b.example has room:", perHost.TryAcquire("b.example"))
	// A third request for a.example waits for a permit, or gives up.
	hurry, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	fmt.Println(perHost.Acquire(hurry, "a.example"))
	perHost.ReleaseN("a.example", 2)
	perHost.Release("b.example")

	// Many requests at once: never more than two per host.
	var mu sync.Mutex
	running, most := map[string]int{}, 0
	var wg sync.WaitGroup
	for i := range 12 {
		host := []string{"a.example", "b.example", "c.example"}[i%3]
		wg.Go(func() {
			if perHost.Acquire(ctx, host) != nil {
				return
			}
			defer perHost.Release(host)
			mu.Lock()
			running[host]++
			most = max(most, running[host])
			mu.Unlock()
			time.Sleep(time.Millisecond) // the request
			mu.Lock()
			running[host]--
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Println("at most two per host:", most <= 2)
	fmt.Println("hosts in memory:", perHost.Len())
	fmt.Println(perHost.AcquireN(ctx, "a.example", 3))
	// Output:
	// a.example has room: false
	// b.example has room: true
	// context deadline exceeded
	// at most two per host: true
	// hosts in memory: 0
	// ctxsync: request exceeds semaphore bound
}

// A Group fetches a key once for all the callers that ask for it at the
// same time, and a caller that gives up does not fail the others.
func ExampleGroup() {
	var g ctxsync.Group[string, string]
	var mu sync.Mutex
	cache := map[string]string{}
	fetches := 0
	started := make(chan struct{})
	release := make(chan struct{})
	load := func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if page, ok := cache["/"]; ok {
			return page, nil // filled by a call that just delivered
		}
		fetches++
		close(started)
		mu.Unlock()
		select {
		case <-release: // the origin answers
		case <-ctx.Done(): // every caller left
		}
		mu.Lock()
		if err := context.Cause(ctx); err != nil {
			return "", err
		}
		cache["/"] = "the page"
		return "the page", nil
	}
	get := func(ctx context.Context) (string, error) {
		mu.Lock()
		page, ok := cache["/"]
		mu.Unlock()
		if ok {
			return page, nil
		}
		return g.Do(ctx, "/", load)
	}

	var wg sync.WaitGroup
	results := make([]string, 5)
	for i := range results {
		wg.Go(func() {
			page, err := get(context.Background())
			results[i] = fmt.Sprint(page, " ", err)
		})
	}
	<-started
	// A caller in a hurry gives up; the call goes on for the others.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	_, err := g.Do(ctx, "/", load)
	fmt.Println("hurried caller:", err)
	close(release)
	wg.Wait()
	fmt.Println(results)
	fmt.Println(fetches, "origin fetch")
	// Output:
	// hurried caller: context deadline exceeded
	// [the page <nil> the page <nil> the page <nil> the page <nil> the page <nil>]
	// 1 origin fetch
}

// A GroupTicket waits for a Group's call in a select, here next to a
// timer; Stop leaves the call.
func ExampleGroupTicket() {
	var g ctxsync.Group[string, int]
	t := g.DoTicket("answer", func(context.Context) (int, error) { return 42, nil })
	select {
	case <-t.Ready():
		fmt.Println(t.Value(), t.Err())
	case <-time.After(time.Minute):
		if !t.Stop() {
			fmt.Println(t.Value(), t.Err()) // delivered as we gave up
		}
	}
	// Output: 42 <nil>
}

// A panic in a Group call's function is re-raised in every caller waiting
// for it, as a *PanicError holding the value and the function's stack.
func ExamplePanicError() {
	var g ctxsync.Group[string, int]
	defer func() {
		var pe *ctxsync.PanicError
		if err, ok := recover().(error); ok && errors.As(err, &pe) {
			fmt.Println("fn panicked:", pe.Value)
		}
	}()
	_, _ = g.Do(context.Background(), "k", func(context.Context) (int, error) {
		panic("out of cheese")
	})
	// Output: fn panicked: out of cheese
}
