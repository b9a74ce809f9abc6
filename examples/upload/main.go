// Command upload runs one ctxsync scenario; see scenarios.Upload.
package main

import (
	"fmt"
	"os"

	"github.com/ctxsync/ctxsync/examples/scenarios"
)

func main() {
	if err := scenarios.Upload(os.Stdout); err != nil {
		fmt.Println("WRONG OUTCOME:", err)
		os.Exit(1)
	}
}
