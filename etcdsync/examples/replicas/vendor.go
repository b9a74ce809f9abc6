package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// vendorLimit is how many requests at once the vendor allows.
	vendorLimit = 10
	// vendorWork is how long the vendor takes to answer a request it
	// accepts, so that concurrency builds up.
	vendorWork = 5 * time.Millisecond
)

// A vendor is the third-party API: an HTTP server in the parent process
// that answers 429 Too Many Requests to a request that arrives while
// vendorLimit others are in flight, and measures the most requests it ever
// had in flight. Every request takes vendorWork, refused or not (the
// vendor reads and checks it before it answers), so what the vendor sees
// at once is what the replicas send at once. Replicas name themselves in
// the X-Replica header.
type vendor struct {
	srv *httptest.Server

	inFlight, most, tooMany, ok atomic.Int64

	mu      sync.Mutex
	okBy    map[string]int // 200 answers by replica
	stall   *stall
	closing chan struct{}
}

// A stall makes the vendor hang on replica's requests once it has answered
// after of them: they stay in flight (each under a permit of the replica)
// until their connection closes. Once n hang, hung is closed.
type stall struct {
	replica string
	after   int
	n       int
	hanging int
	hung    chan struct{}
}

func newVendor(st *stall) *vendor {
	v := &vendor{okBy: map[string]int{}, stall: st, closing: make(chan struct{})}
	v.srv = httptest.NewServer(http.HandlerFunc(v.serve))
	return v
}

func (v *vendor) URL() string { return v.srv.URL }

func (v *vendor) serve(w http.ResponseWriter, r *http.Request) {
	n := v.inFlight.Add(1)
	defer v.inFlight.Add(-1)
	for m := v.most.Load(); n > m && !v.most.CompareAndSwap(m, n); m = v.most.Load() {
	}
	if n > vendorLimit {
		time.Sleep(vendorWork)
		v.tooMany.Add(1)
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if v.hang(r.Header.Get("X-Replica")) {
		select {
		case <-r.Context().Done(): // the replica is gone
		case <-v.closing:
		}
		return
	}
	time.Sleep(vendorWork) // the vendor's work
	v.ok.Add(1)
	v.mu.Lock()
	v.okBy[r.Header.Get("X-Replica")]++
	v.mu.Unlock()
	if _, err := io.WriteString(w, "ok"); err != nil {
		// The client has gone before its answer: it sees the failure
		// itself, and the vendor only reports it.
		fmt.Fprintln(os.Stderr, "vendor: answer:", err)
	}
}

func (v *vendor) hang(replica string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	st := v.stall
	if st == nil || replica != st.replica || v.okBy[replica] < st.after {
		return false
	}
	st.hanging++
	if st.hanging == st.n {
		close(st.hung)
	}
	return true
}

// close ends the hanging requests and stops the server.
func (v *vendor) close() {
	close(v.closing)
	v.srv.Close()
}
