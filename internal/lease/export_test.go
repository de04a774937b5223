package lease

import (
	"encoding/json"
	"strconv"
)

// ClaimKey returns the key of takeover claim gen on the lease version whose
// bytes are body.
func ClaimKey(name string, body []byte, gen int) string {
	var rec record
	if err := json.Unmarshal(body, &rec); err != nil {
		panic(err)
	}
	return claimPrefix(name) + version(rec, body) + "." + strconv.Itoa(gen)
}
