package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// usersKey holds the users state table: the first day each user_key was
// seen in each product (DESIGN §3 "New user").
const usersKey = "_state/users/first_seen.parquet"

type firstSeen struct {
	Product string `parquet:"product"`
	UserKey string `parquet:"user_key"`
	FirstDt int32  `parquet:"first_dt,date"`
}

type userState struct {
	first map[string]day.Day // product + "\x00" + user_key
}

func loadUsers(ctx context.Context, st store.Store) (*userState, error) {
	u := &userState{first: map[string]day.Day{}}
	b, err := st.Get(ctx, usersKey)
	if errors.Is(err, store.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := parquet.Read[firstSeen](bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", usersKey, err)
	}
	for _, r := range rows {
		u.first[r.Product+"\x00"+r.UserKey] = day.Day(r.FirstDt)
	}
	return u, nil
}

// seenBefore reports whether a user was seen in a product before day d.
func (u *userState) seenBefore(d day.Day) rollups.SeenBefore {
	return func(product, userKey string) bool {
		f, ok := u.first[product+"\x00"+userKey]
		return ok && f < d
	}
}

// add merges day d's users and reports whether anything changed.
func (u *userState) add(d day.Day, users []rollups.UserDaily) bool {
	changed := false
	for _, r := range users {
		k := r.Product + "\x00" + r.UserKey
		if f, ok := u.first[k]; !ok || d < f {
			u.first[k] = d
			changed = true
		}
	}
	return changed
}

// saveUsers merges day d's users into the state and saves it. Another run
// may have saved the state since this one loaded it, so the merge happens
// under the state's lease, over a fresh copy: no one's first-seen days are
// lost.
func (c *Config) saveUsers(ctx context.Context, run string, u *userState, d day.Day, users []rollups.UserDaily) error {
	if !u.add(d, users) {
		return nil
	}
	l, err := lease.Acquire(ctx, c.Store, "state/users", lease.HolderID(run), c.LockTTL, max(c.LockWait, time.Minute), c.Now, c.leaseOptions()...)
	if err != nil {
		return err
	}
	defer l.Release(context.WithoutCancel(ctx))
	fresh, err := loadUsers(ctx, c.Store)
	if err != nil {
		return err
	}
	for k, f := range u.first {
		if g, ok := fresh.first[k]; !ok || f < g {
			fresh.first[k] = f
		}
	}
	u.first = fresh.first
	return u.save(ctx, c.Store)
}

func (u *userState) save(ctx context.Context, st store.Store) error {
	rows := make([]firstSeen, 0, len(u.first))
	for k, d := range u.first {
		i := bytes.IndexByte([]byte(k), 0)
		rows = append(rows, firstSeen{Product: k[:i], UserKey: k[i+1:], FirstDt: int32(d)})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Product != rows[j].Product {
			return rows[i].Product < rows[j].Product
		}
		return rows[i].UserKey < rows[j].UserKey
	})
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		return err
	}
	return st.Put(ctx, usersKey, buf.Bytes())
}
