// Command counter runs one ctxsync scenario; see scenarios.Counter.
package main

import (
	"fmt"
	"os"

	"github.com/ctxsync/ctxsync/examples/scenarios"
)

func main() {
	if err := scenarios.Counter(os.Stdout); err != nil {
		fmt.Println("WRONG OUTCOME:", err)
		os.Exit(1)
	}
}
