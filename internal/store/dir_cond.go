package store

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockDir is the hidden folder, under a Dir's root, of the lock files that
// make Replace and DeleteIf atomic between processes. List never shows it.
const LockDir = ".locks"

// tagOf is the tag of content b: its MD5, as S3 computes the ETag of an
// object written in one request.
func tagOf(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// lockKey takes an exclusive flock(2) on key's lock file, one per key under
// LockDir, and returns its release. Processes of one host (the only ones
// a local directory serves) wait for each other there.
func (d *Dir) lockKey(key string) (func(), error) {
	sum := sha256.Sum256([]byte(key))
	dir := filepath.Join(d.root, LockDir)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, hex.EncodeToString(sum[:20])), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing the file drops the lock
}

// GetTag implements Store: the tag is the MD5 of the content read.
func (d *Dir) GetTag(ctx context.Context, key string) ([]byte, string, error) {
	b, err := d.Get(ctx, key)
	if err != nil {
		return nil, "", err
	}
	return b, tagOf(b), nil
}

// checkTag reads key and returns ErrConflict unless its content has tag.
// The caller holds key's lock.
func (d *Dir) checkTag(ctx context.Context, op, key, tag string) error {
	b, err := d.Get(ctx, key)
	if err != nil || tagOf(b) != tag {
		return fmt.Errorf("%s %s: %w", op, key, ErrConflict)
	}
	return nil
}

// Replace implements Store: under key's lock, the current content is
// compared with tag and the new content renamed into place.
func (d *Dir) Replace(ctx context.Context, key string, data []byte, tag string) (string, error) {
	if _, err := d.path(key); err != nil {
		return "", err
	}
	unlock, err := d.lockKey(key)
	if err != nil {
		return "", fmt.Errorf("replace %s: %w", key, err)
	}
	defer unlock()
	if err := d.checkTag(ctx, "replace", key, tag); err != nil {
		return "", err
	}
	if err := d.put(ctx, key, data, false); err != nil {
		return "", err
	}
	return tagOf(data), nil
}

// DeleteIf implements Store, under key's lock as Replace.
func (d *Dir) DeleteIf(ctx context.Context, key, tag string) error {
	if _, err := d.path(key); err != nil {
		return err
	}
	unlock, err := d.lockKey(key)
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	defer unlock()
	if err := d.checkTag(ctx, "delete", key, tag); err != nil {
		return err
	}
	return d.Delete(ctx, key)
}
