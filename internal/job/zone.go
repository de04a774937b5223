package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// RecordedZone returns the reporting time zone the first run recorded in
// st, or "" if no run has recorded one yet. It only reads, so a command can
// refuse a mismatched --tz (see ZoneError) before it writes or logs
// anything.
func RecordedZone(ctx context.Context, st store.Store) (string, error) {
	b, err := st.Get(ctx, stateKey)
	if errors.Is(err, store.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var s warehouseState
	if err := json.Unmarshal(b, &s); err != nil {
		return "", fmt.Errorf("read %s: %w", stateKey, err)
	}
	return s.TimeZone, nil
}
