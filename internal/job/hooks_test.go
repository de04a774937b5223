package job

import "github.com/littlewarehouse/warehouse/internal/day"

// withReadHook calls h before each raw object is read: a failure or a
// stall injected into routing.
func withReadHook(h func(key string) error) Option {
	return func(o *options) { o.readHook = h }
}

// withDayHook calls h before each day is committed: a kill injected
// between a day's files and its manifests.
func withDayHook(h func(d day.Day) error) Option {
	return func(o *options) { o.dayHook = h }
}

// withEraseHook calls h before each step of an erase; an error stops it
// there, as a kill would.
func withEraseHook(h func(step string) error) Option {
	return func(o *options) { o.eraseHook = h }
}
