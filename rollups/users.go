package rollups

import (
	"fmt"
	"hash/fnv"
)

// UserBuckets is how many partitions the users table (and its state) is
// split into, by a hash of product and user_key.
const UserBuckets = 16

// UserBucket returns the bucket (0..UserBuckets-1) of a person in a
// product. product is as in user_daily ("(none)" for empty).
func UserBucket(product, userKey string) int {
	h := fnv.New32a()
	h.Write([]byte(product))
	h.Write([]byte{0})
	h.Write([]byte(userKey))
	return int(h.Sum32() % UserBuckets)
}

// BucketPart names a bucket's partition folder: "bucket=07".
func BucketPart(b int) string { return fmt.Sprintf("bucket=%02d", b) }

// UserDigest is a person's contribution to a cohort digest: cohorts are
// compared by the sum (mod 2^64) of their members' digests, so a bucket's
// share of a cohort can be added to another's.
func UserDigest(product, userKey string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(product))
	h.Write([]byte{0})
	h.Write([]byte(userKey))
	return h.Sum64()
}
