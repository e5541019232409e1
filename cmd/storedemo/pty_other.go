//go:build !linux

package main

import "errors"

// errNoPTY is returned where the demo cannot make its simulated scanner.
var errNoPTY = errors.New("the demo's simulated scanner needs a Linux pseudo-terminal (/dev/ptmx): run `make demo` on Linux")

type pty struct{}

func openPTY() (*pty, error) { return nil, errNoPTY }

func (*pty) Path() string           { return "" }
func (*pty) Send(_, _ string) error { return errNoPTY }
func (*pty) Close() error           { return nil }
