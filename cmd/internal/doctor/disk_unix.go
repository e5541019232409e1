//go:build linux || darwin || freebsd

package doctor

import "syscall"

// diskUsage is the space left to an unprivileged writer in dir's file
// system, and its size.
func diskUsage(dir string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), uint64(st.Blocks) * uint64(st.Bsize), nil
}
