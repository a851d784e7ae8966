//go:build !unix && !windows

package store

import "errors"

// diskFree is unknown on this platform; CheckSpace then checks the quota only.
func diskFree(string) (uint64, error) {
	return 0, errors.New("free disk space unknown on this platform")
}
