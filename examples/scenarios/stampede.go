package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctxsync/ctxsync"
)

// StampedeClients is how many goroutines want the same page at once.
const StampedeClients = 50

// Stampede shows a cache stampede: many goroutines miss the same cold key
// together and all go to the origin. With a Lock around the miss, exactly
// one fetches and the others find the page cached. Then the per-key
// version: with a Group, many goroutines asking for many keys cause one
// fetch per key, and a client that gives up fails nobody else.
func Stampede(w io.Writer) (result error) {
	out := newReport(w)
	defer out.check(&result)
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		// A failed write means the client has gone: a handler has no
		// one left to tell, and the client sees its own error.
		_, _ = io.WriteString(rw, "<html>the page</html>")
	}))
	defer origin.Close()
	client := &http.Client{}
	defer client.CloseIdleConnections()
	ctx := context.Background()

	// Without a lock. Every goroutine checks the cache, then waits at a
	// barrier until all have checked, which is what a burst of requests
	// for a key that just expired looks like to a slow origin.
	cache := newPageCache()
	missed := ctxsync.NewBarrier(StampedeClients)
	var wg sync.WaitGroup
	for range StampedeClients {
		wg.Go(func() {
			if _, ok := cache.get("/"); ok {
				return
			}
			if _, err := missed.Wait(ctx); err != nil {
				return
			}
			if page, err := fetch(ctx, client, origin.URL); err == nil {
				cache.put("/", page)
			}
		})
	}
	wg.Wait()
	unlocked := hits.Swap(0)
	out.printf("without a lock: %d clients, %d origin fetches\n", StampedeClients, unlocked)

	// With a Lock: the first to miss fetches while the others queue, and
	// they find the page cached when their turn comes.
	cache = newPageCache()
	var fill ctxsync.Lock
	for range StampedeClients {
		wg.Go(func() {
			if _, err := cachedFetch(ctx, client, cache, &fill, origin.URL); err != nil {
				out.println("fetch failed:", err)
			}
		})
	}
	wg.Wait()
	locked := hits.Load()
	out.printf("with a Lock:    %d clients, %d origin fetch\n", StampedeClients, locked)

	if err := expect("origin fetches without a lock", unlocked, int64(StampedeClients)); err != nil {
		return err
	}
	if err := expect("origin fetches with a Lock", locked, int64(1)); err != nil {
		return err
	}
	return stampedePerKey(ctx, out, client)
}

// The per-key stampede: StampedePerKeyClients goroutines ask for
// StampedeKeys pages at once, and one more client gives up while its page
// is being fetched.
const (
	StampedePerKeyClients = 100
	StampedeKeys          = 10
)

// stampedePerKey shows the stampede of a real cache: many keys, each
// missed by many goroutines at once. A ctxsync.Group fetches each key once
// for all who ask for it while the fetch is in flight, and a client that
// gives up returns at once without failing the others, which
// singleflight's callers cannot do (there, the fetch runs under the first
// caller's context, and one caller cannot leave).
func stampedePerKey(ctx context.Context, out *report, client *http.Client) error {
	var hits atomic.Int64
	slowPath := "/page/0"
	requested := make(chan struct{}) // the origin has the request for slowPath
	gaveUp := make(chan struct{})    // the impatient client has left
	var once sync.Once
	origin := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == slowPath {
			// This page is slow: it comes only after a client has
			// given up waiting for it.
			once.Do(func() { close(requested) })
			<-gaveUp
		}
		_, _ = io.WriteString(rw, "<html>"+r.URL.Path+"</html>")
	}))
	defer origin.Close()

	cache := newPageCache()
	var pages ctxsync.Group[string, string]
	get := func(ctx context.Context, path string) (string, error) {
		if page, ok := cache.get(path); ok {
			return page, nil
		}
		return pages.Do(ctx, path, func(ctx context.Context) (string, error) {
			// A call that starts just after another delivered finds
			// its page cached.
			if page, ok := cache.get(path); ok {
				return page, nil
			}
			// ctx keeps the first caller's values, but not its
			// cancellation: the fetch goes on for the others when a
			// caller gives up, and stops once all have.
			page, err := fetch(ctx, client, origin.URL+path)
			if err == nil {
				cache.put(path, page)
			}
			return page, err
		})
	}

	var wg sync.WaitGroup
	var served atomic.Int64
	for i := range StampedePerKeyClients {
		path := fmt.Sprintf("/page/%d", i%StampedeKeys)
		wg.Go(func() {
			page, err := get(ctx, path)
			if err != nil || page != "<html>"+path+"</html>" {
				out.println("wrong page:", page, err)
				return
			}
			served.Add(1)
		})
	}

	// One more client wants the slow page, but only for a moment.
	<-requested
	hurry, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, impatient := get(hurry, slowPath)
	cancel()
	close(gaveUp)
	wg.Wait()

	out.printf("with a Group:   %d clients, %d keys, %d origin fetches\n", StampedePerKeyClients, StampedeKeys, hits.Load())
	out.printf("a client that gave up got %q; %d/%d clients got their page\n", impatient, served.Load(), StampedePerKeyClients)
	if err := expect("origin fetches with a Group", hits.Load(), int64(StampedeKeys)); err != nil {
		return err
	}
	if err := expect("the impatient client's error", impatient, context.DeadlineExceeded); err != nil {
		return err
	}
	return expect("clients served", served.Load(), int64(StampedePerKeyClients))
}

// cachedFetch returns the cached page, or fetches it under fill so that
// only one goroutine goes to the origin for a missing page.
func cachedFetch(ctx context.Context, client *http.Client, cache *pageCache, fill *ctxsync.Lock, url string) (string, error) {
	if page, ok := cache.get("/"); ok {
		return page, nil
	}
	if err := fill.Lock(ctx); err != nil {
		return "", err
	}
	defer fill.Unlock()
	if page, ok := cache.get("/"); ok { // filled while we waited
		return page, nil
	}
	page, err := fetch(ctx, client, url)
	if err != nil {
		return "", err
	}
	cache.put("/", page)
	return page, nil
}

type pageCache struct {
	mu    sync.Mutex
	pages map[string]string
}

func newPageCache() *pageCache { return &pageCache{pages: map[string]string{}} }

func (c *pageCache) get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pages[key]
	return p, ok
}

func (c *pageCache) put(key, page string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pages[key] = page
}

func fetch(ctx context.Context, client *http.Client, url string) (page string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	// A page whose body did not close cleanly may be cut short: report it.
	defer func() { err = errors.Join(err, resp.Body.Close()) }()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}
