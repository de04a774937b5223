package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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

// errNoZone says no run has recorded a zone in the store yet.
var errNoZone = errors.New("no time zone recorded yet")

// CheckZone returns a *ZoneError if the zone a run recorded in st is not
// loc, nil if it is or none is recorded yet. It only reads.
func CheckZone(ctx context.Context, st store.Store, loc *time.Location) error {
	if err := checkZone(ctx, st, loc); !errors.Is(err, errNoZone) {
		return err
	}
	return nil
}

// checkZone is CheckZone, but says errNoZone when no zone is recorded.
func checkZone(ctx context.Context, st store.Store, loc *time.Location) error {
	have, err := RecordedZone(ctx, st)
	switch {
	case err != nil:
		return err
	case have == "":
		return errNoZone
	case have != loc.String():
		return &ZoneError{Store: st.String(), Have: have, Want: loc.String()}
	}
	return nil
}
