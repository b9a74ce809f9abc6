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

const (
	// VendorLimit is how many requests at once the vendor allows.
	VendorLimit = 10
	// VendorRequests is how many requests the scenario sends.
	VendorRequests = 1000
)

// RateLimit sends 1,000 requests to a vendor API that answers 429 Too Many
// Requests above 10 concurrent requests, through a Semaphore(10): the
// vendor never sees more than 10 at once and never answers 429.
func RateLimit(w io.Writer) (result error) {
	out := newReport(w)
	defer out.check(&result)
	var inFlight, most, tooMany atomic.Int64
	vendor := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n > VendorLimit {
			tooMany.Add(1)
			rw.WriteHeader(http.StatusTooManyRequests)
			return
		}
		time.Sleep(200 * time.Microsecond) // the vendor's work
		// A failed write means the client has gone: a handler has no
		// one left to tell, and the client sees its own error.
		_, _ = io.WriteString(rw, "ok")
	}))
	defer vendor.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: VendorLimit}}
	defer client.CloseIdleConnections()

	ctx := context.Background()
	limit := ctxsync.NewSemaphore(VendorLimit)
	var done atomic.Int64
	var wg sync.WaitGroup
	for range VendorRequests {
		wg.Go(func() {
			if err := limit.Acquire(ctx); err != nil {
				return
			}
			defer limit.Release()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, vendor.URL, nil)
			resp, err := client.Do(req)
			if err != nil {
				out.println("request failed:", err)
				return
			}
			// Read to the end and close, so the connection is reused;
			// a request whose answer did not arrive whole is not done.
			_, err = io.Copy(io.Discard, resp.Body)
			if err = errors.Join(err, resp.Body.Close()); err != nil {
				out.println("reading the answer failed:", err)
				return
			}
			if n := done.Add(1); n%250 == 0 {
				out.printf("  %4d/%d requests done\n", n, VendorRequests)
			}
		})
	}
	wg.Wait()
	out.printf("most requests in flight at the vendor: %d (limit %d); 429 answers: %d\n",
		most.Load(), VendorLimit, tooMany.Load())

	if err := expect("requests completed", done.Load(), int64(VendorRequests)); err != nil {
		return err
	}
	if most.Load() > VendorLimit {
		return fmt.Errorf("%d requests in flight at once, limit %d", most.Load(), VendorLimit)
	}
	return expect("429 answers", tooMany.Load(), int64(0))
}
