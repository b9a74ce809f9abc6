// Command pc runs the seeds' producer/consumer workload (1,000,000
// integers, a queue of 1,024, 4 consumers, join) on a ctxsync Queue and on
// the Go idiom a user would otherwise write, a buffered channel with a
// sync.WaitGroup for join, and prints the median items per second of each over alternating runs.
//
// It also runs the Queue with consumers that take batches of 64 with
// GetMany (one TaskDone per item, as the contract asks).
//
// With -asyncio N (items per second measured by bench/asyncio_pc.py) it
// also prints the ratio to asyncio; with -cpuprofile F it writes a CPU
// profile of the Queue rounds to F; -rounds N sets how many alternating
// rounds it runs, and -spread prints the slowest, median and fastest round
// of each (bench/run.sh runs it so beside a competing CPU-bound process).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctxsync/ctxsync"
)

const (
	items     = 1_000_000
	capacity  = 1024
	consumers = 4
	wantSum   = items * (items - 1) / 2
)

func main() {
	asyncio := flag.Float64("asyncio", 0, "asyncio's items per second, to print the ratio")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the Queue rounds to this file")
	rounds := flag.Int("rounds", 7, "alternating rounds of each workload")
	spread := flag.Bool("spread", false, "print the slowest, median and fastest round of each")
	flag.Parse()

	var prof *os.File
	if *profile != "" {
		var err error
		if prof, err = os.Create(*profile); err != nil {
			fail(err)
		}
	}
	// Alternate the three, so that a slow spell of the machine hits all,
	// and report the median of each.
	var queueTimes, batchTimes, chanTimes []time.Duration
	for range *rounds {
		if prof != nil {
			_ = pprof.StartCPUProfile(prof)
		}
		queueTimes = append(queueTimes, runQueue(1))
		batchTimes = append(batchTimes, runQueue(64))
		if prof != nil {
			pprof.StopCPUProfile()
			prof = nil // one profiled round is enough
		}
		chanTimes = append(chanTimes, runChannel())
	}
	queue := items / median(queueTimes).Seconds()
	batch := items / median(batchTimes).Seconds()
	channel := items / median(chanTimes).Seconds()
	fmt.Printf("ctxsync Queue:           %12.0f items/s\n", queue)
	fmt.Printf("ctxsync Queue, GetMany:  %12.0f items/s\n", batch)
	fmt.Printf("chan + WaitGroup:        %12.0f items/s\n", channel)
	fmt.Printf("ctxsync / chan:          %12.2fx (goal >= 1.5x)\n", queue/channel)
	fmt.Printf("GetMany(64) / chan:      %12.2fx (goal >= 10x)\n", batch/channel)
	if *spread {
		for _, w := range []struct {
			name  string
			times []time.Duration
		}{{"ctxsync Queue", queueTimes}, {"ctxsync Queue, GetMany", batchTimes}, {"chan + WaitGroup", chanTimes}} {
			slowest, fastest := slices.Max(w.times), slices.Min(w.times)
			fmt.Printf("%-24s %12.0f / %.0f / %.0f items/s (slowest / median / fastest of %d)\n", w.name+":",
				items/slowest.Seconds(), items/median(w.times).Seconds(), items/fastest.Seconds(), len(w.times))
		}
	}
	if *asyncio > 0 {
		fmt.Printf("ctxsync / asyncio:       %12.1fx (goal >= 15x)\n", queue / *asyncio)
	}
}

// runQueue moves the items through a Queue, its consumers taking batch
// items at a time (Get when batch is 1, GetMany otherwise).
func runQueue(batch int) time.Duration {
	ctx := context.Background()
	q := ctxsync.NewQueue[int](capacity)
	var sum atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range consumers {
		wg.Go(func() {
			local := 0
			dst := make([]int, batch)
			for {
				n := 1
				var err error
				if batch == 1 {
					dst[0], err = q.Get(ctx)
				} else {
					n, err = q.GetMany(ctx, dst)
				}
				if err != nil {
					sum.Add(int64(local))
					return
				}
				for _, v := range dst[:n] {
					local += v
					q.TaskDone()
				}
			}
		})
	}
	for i := range items {
		if err := q.Put(ctx, i); err != nil {
			fail(err)
		}
	}
	if err := q.Join(ctx); err != nil {
		fail(err)
	}
	elapsed := time.Since(start)
	q.Shutdown()
	wg.Wait()
	check(sum.Load())
	return elapsed
}

func runChannel() time.Duration {
	ch := make(chan int, capacity)
	var pending sync.WaitGroup // join: one count per item
	var sum atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range consumers {
		wg.Go(func() {
			local := 0
			for v := range ch {
				local += v
				pending.Done()
			}
			sum.Add(int64(local))
		})
	}
	for i := range items {
		pending.Add(1)
		ch <- i
	}
	pending.Wait()
	elapsed := time.Since(start)
	close(ch)
	wg.Wait()
	check(sum.Load())
	return elapsed
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func check(sum int64) {
	if sum != wantSum {
		fail(fmt.Errorf("sum %d, want %d", sum, wantSum))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pc:", err)
	os.Exit(1)
}
