//go:build !unix

package central

import (
	"fmt"
	"os"
)

// lockFile opens path; without flock, two centrals on one data directory
// are not detected on this system.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return f, nil
}
