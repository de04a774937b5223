package store_test

import (
	"testing"

	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/store/storetest"
)

func TestMemConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMem() })
}
