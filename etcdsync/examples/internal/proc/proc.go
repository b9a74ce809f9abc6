// Package proc runs the example programs' replicas: copies of the program
// itself, as real OS processes, driven one line at a time; and a Narrator
// for what the programs print.
package proc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// A Child is one copy of this program, started in a role of its own: it
// reads its configuration from an environment variable, takes commands on
// its stdin and reports on its stdout, one line each. It exits when its
// stdin ends, so a parent that dies (even by SIGKILL) leaves no process
// behind.
type Child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *lineQueue
	done  chan struct{} // closed once the process has exited and been waited for
	err   error         // Wait's result, once done is closed
}

// Start runs this program's own executable with env=cfg (as JSON).
func Start(name, env string, cfg any) (*Child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), env+"="+string(b))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	q := newLineQueue()
	cmd.Stdout = q
	cmd.Stderr = &prefixWriter{w: os.Stderr, prefix: name + ": "}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &Child{name: name, cmd: cmd, stdin: stdin, out: q, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait() // also closes stdin, and waits for stdout to be copied
		q.close()
		close(c.done)
	}()
	return c, nil
}

// Send writes one command line to the child.
func (c *Child) Send(cmd string) error {
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		return fmt.Errorf("%s: send %q: %w", c.name, cmd, err)
	}
	return nil
}

// Expect returns the fields of the next line the child prints that starts
// with word, skipping others.
func (c *Child) Expect(ctx context.Context, word string) (map[string]string, error) {
	for {
		line, err := c.out.next(ctx)
		if errors.Is(err, io.EOF) {
			<-c.done
			return nil, fmt.Errorf("%s exited (%v) before saying %q", c.name, c.err, word)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: waiting for %q: %w", c.name, word, err)
		}
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != word {
			continue
		}
		kv := map[string]string{}
		for _, s := range f[1:] {
			k, v, _ := strings.Cut(s, "=")
			kv[k] = v
		}
		return kv, nil
	}
}

// Wait waits for the child to exit and returns its error (nil for exit
// status 0); if ctx ends first, the child is killed.
func (c *Child) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		c.Kill()
		return fmt.Errorf("%s: %w", c.name, ctx.Err())
	}
}

// Next returns the next line the child prints, or io.EOF once its stdout
// has ended.
func (c *Child) Next(ctx context.Context) (string, error) { return c.out.next(ctx) }

// Name is the name the child was started with.
func (c *Child) Name() string { return c.name }

// Exited is closed once the child has exited and been waited for; Err is
// then its exit error.
func (c *Child) Exited() <-chan struct{} { return c.done }

// Err is the child's exit error (nil for status 0), once Exited is closed.
func (c *Child) Err() error { return c.err }

// Kill sends SIGKILL (a no-op once the child has exited) and waits for it.
func (c *Child) Kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// KillAll kills and waits for every child still running: every path out of
// the parent calls it, so no process outlives its scenario.
func KillAll(cs []*Child) {
	for _, c := range cs {
		if c != nil {
			c.Kill()
		}
	}
}

// lineQueue collects a child's stdout as lines. Writes never block, so the
// child never stalls on a parent that is not reading.
type lineQueue struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	closed  bool
	notify  chan struct{}
}

func newLineQueue() *lineQueue { return &lineQueue{notify: make(chan struct{}, 1)} }

func (q *lineQueue) Write(p []byte) (int, error) {
	q.mu.Lock()
	q.partial = append(q.partial, p...)
	for {
		i := strings.IndexByte(string(q.partial), '\n')
		if i < 0 {
			break
		}
		q.lines = append(q.lines, string(q.partial[:i]))
		q.partial = q.partial[i+1:]
	}
	q.mu.Unlock()
	q.wake()
	return len(p), nil
}

func (q *lineQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

func (q *lineQueue) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// next returns the next line, or io.EOF once the child's stdout has ended.
func (q *lineQueue) next(ctx context.Context) (string, error) {
	for {
		q.mu.Lock()
		if len(q.lines) > 0 {
			l := q.lines[0]
			q.lines = q.lines[1:]
			q.mu.Unlock()
			return l, nil
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return "", io.EOF
		}
		select {
		case <-q.notify:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// prefixWriter passes a child's stderr on, each line marked with its name.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	mid    bool // in the middle of a line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sb strings.Builder
	for _, c := range b {
		if !p.mid {
			sb.WriteString(p.prefix)
			p.mid = true
		}
		sb.WriteByte(c)
		if c == '\n' {
			p.mid = false
		}
	}
	_, err := io.WriteString(p.w, sb.String())
	return len(b), err
}

// Commands reads the parent's commands from stdin, one a line, in a child.
// When stdin ends the parent is gone (or done with this child): the
// process exits at once rather than outlive it.
func Commands() <-chan string {
	ch := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			ch <- strings.TrimSpace(sc.Text())
		}
		os.Exit(3)
	}()
	return ch
}

// Await waits in a child for the command word from the parent.
func Await(cmds <-chan string, word string) {
	for c := range cmds {
		if c == word {
			return
		}
	}
}
