package collector

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"unicode"
)

// MinKeyLength is the shortest API key accepted in the configuration.
const MinKeyLength = 16

// ParseKeys splits a list of API keys separated by commas or newlines, as in
// COLLECTOR_API_KEYS or a keys file. Blank entries and lines starting with #
// are skipped.
func ParseKeys(s string) []string {
	var keys []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, k := range strings.Split(line, ",") {
			if k = strings.TrimSpace(k); k != "" {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// ReadKeysFile reads API keys from a file: one or more a line, separated by
// commas, with # comment lines.
func ReadKeysFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read api keys: %w", err)
	}
	return ParseKeys(string(b)), nil
}

// keyring holds the accepted API keys as SHA-256 sums and matches a
// presented key against all of them in constant time.
type keyring struct {
	sums [][sha256.Size]byte
	ids  []string
}

func newKeyring(keys []string) (*keyring, error) {
	k := &keyring{}
	seen := map[[sha256.Size]byte]bool{}
	for i, key := range keys {
		if len(key) < MinKeyLength {
			return nil, fmt.Errorf("api key %d is %d characters long, want at least %d", i+1, len(key), MinKeyLength)
		}
		if strings.IndexFunc(key, func(r rune) bool { return unicode.IsSpace(r) || r == ',' || !unicode.IsPrint(r) }) >= 0 {
			return nil, fmt.Errorf("api key %d holds a space, comma or control character", i+1)
		}
		sum := sha256.Sum256([]byte(key))
		if seen[sum] {
			continue
		}
		seen[sum] = true
		k.sums = append(k.sums, sum)
		k.ids = append(k.ids, keyID(sum))
	}
	if len(k.sums) == 0 {
		return nil, fmt.Errorf("no api keys")
	}
	return k, nil
}

// keyID names a key in logs without revealing it: the first 8 hex digits of
// its SHA-256.
func keyID(sum [sha256.Size]byte) string { return "key-" + hex.EncodeToString(sum[:4]) }

// match reports which key, if any, equals presented. It compares the
// SHA-256 of presented with every key's, always all of them and each in
// constant time, so timing tells neither a key's length nor how much of it
// matched, nor which key.
func (k *keyring) match(presented string) (id string, ok bool) {
	sum := sha256.Sum256([]byte(presented))
	found := -1
	for i := range k.sums {
		if subtle.ConstantTimeCompare(sum[:], k.sums[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return k.ids[found], true
}
