// Command ratelimit runs one ctxsync scenario; see scenarios.RateLimit.
package main

import (
	"fmt"
	"os"

	"github.com/ctxsync/ctxsync/examples/scenarios"
)

func main() {
	if err := scenarios.RateLimit(os.Stdout); err != nil {
		fmt.Println("WRONG OUTCOME:", err)
		os.Exit(1)
	}
}
