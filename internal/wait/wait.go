// Package wait pauses work in a way a context can cut short.
package wait

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx is done, whichever comes first; it returns
// ctx's error in the second case, else nil.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
