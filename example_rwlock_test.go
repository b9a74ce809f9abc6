package ctxsync_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ctxsync/ctxsync"
)

// configCache is read by many request handlers at once and reloaded now
// and then by one writer.
type configCache struct {
	mu       ctxsync.RWLock
	settings map[string]string
	version  int
}

// Get reads a setting under a read lock; a handler whose request is
// cancelled does not wait behind a reload.
func (c *configCache) Get(ctx context.Context, key string) (string, error) {
	if err := c.mu.RLock(ctx); err != nil {
		return "", err
	}
	defer c.mu.RUnlock()
	return c.settings[key], nil
}

// Reload swaps in new settings under the write lock, giving up after
// timeout rather than stalling the reloader behind a long reader. It then
// downgrades to a read lock to log what it installed: no other reload can
// get in between, and readers waiting behind it go on at once.
func (c *configCache) Reload(timeout time.Duration, settings map[string]string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.mu.Lock(ctx); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	c.settings = settings
	c.version++
	c.mu.Downgrade()
	defer c.mu.RUnlock()
	fmt.Println("installed version", c.version, "with", len(c.settings), "settings")
	return nil
}

func ExampleRWLock() {
	c := &configCache{settings: map[string]string{"region": "eu"}}
	ctx := context.Background()

	// A long report holds a read lock; a reload cannot wait that long.
	_ = c.mu.RLock(ctx)
	err := c.Reload(10*time.Millisecond, map[string]string{"region": "us"})
	fmt.Println(err, errors.Is(err, context.DeadlineExceeded))
	region, _ := c.Get(ctx, "region") // readers still share the lock
	fmt.Println("region:", region, "readers:", c.mu.Readers())
	c.mu.RUnlock()

	// Once the report is done, the reload goes through.
	_ = c.Reload(time.Second, map[string]string{"region": "us", "tier": "gold"})
	region, _ = c.Get(ctx, "region")
	fmt.Println("region:", region)
	// Output:
	// reload: context deadline exceeded true
	// region: eu readers: 1
	// installed version 1 with 2 settings
	// region: us
}
