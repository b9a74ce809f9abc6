// Command tour runs every ctxsync scenario with a short narration, and
// exits non-zero if any outcome is wrong.
//
//	go run ./examples/tour
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/ctxsync/ctxsync/examples/scenarios"
)

func main() {
	start := time.Now()
	failed := 0
	for i, s := range scenarios.All {
		fmt.Printf("\n%d. %s\n", i+1, s.Name)
		if err := s.Run(os.Stdout); err != nil {
			fmt.Printf("   WRONG OUTCOME: %v\n", err)
			failed++
		}
	}
	fmt.Printf("\n%d scenarios, %d with a wrong outcome, in %v\n", len(scenarios.All), failed, time.Since(start).Round(time.Millisecond))
	if failed > 0 {
		os.Exit(1)
	}
}
