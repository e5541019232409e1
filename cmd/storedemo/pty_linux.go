//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// pty is a pseudo-terminal standing in for a scanner's serial cable: the
// demo writes what the scanner hardware would send to the master, and the
// agent's scanner opens the slave by its path, as it would /dev/ttyACM0.
type pty struct {
	master *os.File
	// slave is held open for the life of the pty, so the line settings
	// stay raw and the master never sees a hangup when the scanner closes
	// and reopens its port.
	slave *os.File
	path  string // /dev/pts/N
}

// openPTY opens a new pseudo-terminal with its slave in raw mode.
func openPTY() (*pty, error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("pty number: %w", err)
	}
	path := "/dev/pts/" + strconv.Itoa(n)
	s, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := makeRaw(int(s.Fd())); err != nil {
		s.Close()
		m.Close()
		return nil, fmt.Errorf("raw mode on %s: %w", path, err)
	}
	return &pty{master: m, slave: s, path: path}, nil
}

// makeRaw is cfmakeraw(3): bytes pass as they are, no echo, no line
// editing, CR stays CR.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// Path is the slave's path, the scanner's port.
func (p *pty) Path() string { return p.path }

// Send writes one scanner frame: the code and the terminator.
func (p *pty) Send(code, terminator string) error {
	_, err := p.master.Write([]byte(code + terminator))
	return err
}

// Close closes both ends.
func (p *pty) Close() error {
	return errors.Join(p.slave.Close(), p.master.Close())
}
