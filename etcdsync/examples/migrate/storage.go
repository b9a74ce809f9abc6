package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
)

// storage is the protected resource: an HTTP server in the parent process
// that remembers the highest fencing token it has seen and refuses a write
// that carries a lower one (409 Conflict). That check, not the lock alone,
// is what makes a stale holder harmless: a process can lose its lock (its
// lease ran out while it was paused) and not know it yet.
type storage struct {
	srv *httptest.Server

	mu       sync.Mutex
	highest  int64
	accepted []write
	refused  []write
}

type write struct {
	who, what string
	token     int64
}

func newStorage() *storage {
	st := &storage{}
	st.srv = httptest.NewServer(http.HandlerFunc(st.serve))
	return st
}

func (st *storage) URL() string { return st.srv.URL }

func (st *storage) close() { st.srv.Close() }

// serve handles POST /?token=T&who=W&what=X.
func (st *storage) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	token, err := strconv.ParseInt(r.FormValue("token"), 10, 64)
	if err != nil {
		http.Error(w, "bad token", http.StatusBadRequest)
		return
	}
	wr := write{who: r.FormValue("who"), what: r.FormValue("what"), token: token}
	st.mu.Lock()
	defer st.mu.Unlock()
	if token < st.highest {
		st.refused = append(st.refused, wr)
		http.Error(w, fmt.Sprintf("stale token %d: %d seen", token, st.highest), http.StatusConflict)
		return
	}
	st.highest = token
	st.accepted = append(st.accepted, wr)
	if _, err := io.WriteString(w, "ok"); err != nil {
		// The client has gone before its answer: it sees the failure
		// itself, and the storage only reports it.
		fmt.Fprintln(os.Stderr, "storage: answer:", err)
	}
}

// writes returns copies of the accepted and refused writes so far.
func (st *storage) writes() (accepted, refused []write) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]write(nil), st.accepted...), append([]write(nil), st.refused...)
}
