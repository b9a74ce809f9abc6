// Command overrelease runs one ctxsync scenario; see scenarios.OverRelease.
package main

import (
	"fmt"
	"os"

	"github.com/ctxsync/ctxsync/examples/scenarios"
)

func main() {
	if err := scenarios.OverRelease(os.Stdout); err != nil {
		fmt.Println("WRONG OUTCOME:", err)
		os.Exit(1)
	}
}
