// Command phases runs one ctxsync scenario; see scenarios.Phases.
package main

import (
	"fmt"
	"os"

	"github.com/ctxsync/ctxsync/examples/scenarios"
)

func main() {
	if err := scenarios.Phases(os.Stdout); err != nil {
		fmt.Println("WRONG OUTCOME:", err)
		os.Exit(1)
	}
}
