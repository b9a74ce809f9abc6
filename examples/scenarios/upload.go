package scenarios

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/ctxsync/ctxsync"
)

// Upload shows Event as a one-shot signal and as an event bus. An uploader
// sends a file to a storage server and sets an Event when it is done; a
// notifier and a thumbnailer wait for it, and a reporter with a short
// deadline gives up. Then a small bus fans one named event out to its
// listeners.
func Upload(w io.Writer) (result error) {
	out := newReport(w)
	defer out.check(&result)
	storage := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		// A failed write means the client has gone: a handler has no
		// one left to tell, and the client sees its own error.
		_, _ = fmt.Fprint(rw, n)
	}))
	defer storage.Close()
	client := &http.Client{}
	defer client.CloseIdleConnections()
	ctx := context.Background()

	var uploaded ctxsync.Event
	var mu sync.Mutex
	var heard []string
	var wg sync.WaitGroup
	for _, who := range []string{"notifier", "thumbnailer"} {
		wg.Go(func() {
			if uploaded.Wait(ctx) == nil {
				mu.Lock()
				heard = append(heard, who+" saw the upload finish")
				mu.Unlock()
			}
		})
	}
	// Nothing sets the event before the upload starts, so this deadline
	// always passes first.
	impatient, cancel := context.WithTimeout(ctx, time.Millisecond)
	err := uploaded.Wait(impatient)
	cancel()
	out.println("reporter with a 1ms deadline:", err)

	resp, err := client.Post(storage.URL, "application/octet-stream", bytes.NewReader(make([]byte, 1<<20)))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	if err = errors.Join(err, resp.Body.Close()); err != nil {
		return err
	}
	out.printf("uploaded %s bytes\n", body)
	uploaded.Set()
	wg.Wait()
	slices.Sort(heard)
	for _, h := range heard {
		out.println(" ", h)
	}

	// An event bus: On waits for a named event, Trigger sets it.
	bus := &EventBus{}
	got := make(chan string, 3)
	for _, l := range []string{"billing", "email", "search index"} {
		wg.Go(func() {
			if bus.On(ctx, "user.signed_up") == nil {
				got <- l
			}
		})
	}
	bus.Trigger("user.signed_up")
	wg.Wait()
	close(got)
	var listeners []string
	for l := range got {
		listeners = append(listeners, l)
	}
	slices.Sort(listeners)
	out.printf("bus: user.signed_up reached %v\n", listeners)

	if err := expect("listeners woken by the upload", len(heard), 2); err != nil {
		return err
	}
	return expect("bus listeners", len(listeners), 3)
}

// EventBus maps event names to Events; its zero value is ready to use.
type EventBus struct {
	mu     sync.Mutex
	events map[string]*ctxsync.Event
}

func (b *EventBus) event(name string) *ctxsync.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.events == nil {
		b.events = map[string]*ctxsync.Event{}
	}
	e, ok := b.events[name]
	if !ok {
		e = new(ctxsync.Event)
		b.events[name] = e
	}
	return e
}

// On waits until the named event has been triggered, or ctx ends.
func (b *EventBus) On(ctx context.Context, name string) error { return b.event(name).Wait(ctx) }

// Trigger wakes every listener of the named event, now and later.
func (b *EventBus) Trigger(name string) { b.event(name).Set() }
