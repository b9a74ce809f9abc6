package proc

import (
	"fmt"
	"io"
)

// A Narrator writes a program's narration to an io.Writer, and keeps the
// first error a write returns, in the manner of bufio.Writer: once a write
// has failed, the later ones are not attempted, and Err reports that error.
// A program narrates without checking each line, and returns Err at the
// end, so that narration which went nowhere (a closed pipe, a full disk)
// still fails it. A Narrator is not safe for concurrent use.
type Narrator struct {
	w   io.Writer
	err error
}

// NewNarrator returns a Narrator that writes to w.
func NewNarrator(w io.Writer) *Narrator { return &Narrator{w: w} }

// Printf writes as fmt.Fprintf does, unless an earlier write has failed.
func (n *Narrator) Printf(format string, args ...any) {
	if n.err != nil {
		return
	}
	if _, err := fmt.Fprintf(n.w, format, args...); err != nil {
		n.err = fmt.Errorf("narration: %w", err)
	}
}

// Println writes as fmt.Fprintln does, unless an earlier write has failed.
func (n *Narrator) Println(args ...any) {
	if n.err != nil {
		return
	}
	if _, err := fmt.Fprintln(n.w, args...); err != nil {
		n.err = fmt.Errorf("narration: %w", err)
	}
}

// Err is the first error a write returned, or nil.
func (n *Narrator) Err() error { return n.err }
