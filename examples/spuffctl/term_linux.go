package main

import (
	"os"
	"syscall"
	"unsafe"
)

// fdIsTerminal reports whether f is a terminal (TCGETS succeeds on it; a
// pipe, a file or /dev/null fails).
func fdIsTerminal(f *os.File) bool {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}
