//go:build unix

package cli

import (
	"os"
	"syscall"
)

// keepOwner gives the compacted file the owner the old one had: storectl
// run as root must not leave the daemon's store owned by root.
func keepOwner(path string, before os.FileInfo) {
	if before == nil {
		return
	}
	if st, ok := before.Sys().(*syscall.Stat_t); ok {
		os.Lchown(path, int(st.Uid), int(st.Gid))
	}
}
