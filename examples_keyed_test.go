package ctxsync_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ctxsync/ctxsync"
)

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
