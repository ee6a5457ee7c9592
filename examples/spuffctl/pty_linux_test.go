package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair: what is written to master is read
// from the terminal slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		m.Close()
		t.Skipf("unlocking the pseudo-terminal: %v", errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		m.Close()
		t.Skipf("naming the pseudo-terminal: %v", errno)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("opening the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// onTerminal runs spuffctl args with a terminal as stdin, typing answer.
func onTerminal(t *testing.T, e *env, answer string, args ...string) result {
	t.Helper()
	master, slave := openPTY(t)
	cmd := e.command(t.Context(), args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if answer != "" {
		if _, err := master.Write([]byte(answer)); err != nil {
			t.Fatal(err)
		}
	}
	_ = cmd.Wait()
	return result{args: args, stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
}

// TestDownAllAsksOnATerminal: down --all asks before destroying when its
// input is a terminal, destroys nothing unless the answer is yes, and does
// not ask with --yes.
func TestDownAllAsksOnATerminal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.up("--name", "keep-a"), e.up("--name", "keep-b")
	r := onTerminal(t, e, "n\n", "down", "--all")
	if r.code != exitFailed || !strings.Contains(r.stderr, "[y/N]") || !strings.Contains(r.stderr, "keep-a ("+a.ID+")") || strings.Contains(r.stdout, "destroyed") {
		t.Errorf("answering no: want the question, exit 1 and nothing destroyed:\n%v", r)
	}
	if n := len(e.ls("digitalocean")); n != 2 {
		t.Errorf("after answering no, %d machines are left, want 2", n)
	}
	r = onTerminal(t, e, "y\n", "down", "--all")
	if r.code != exitOK || !strings.Contains(r.stdout, "destroyed "+b.ID) {
		t.Errorf("answering yes:\n%v", r)
	}
	e.up("--name", "third")
	r = onTerminal(t, e, "", "down", "--all", "--yes")
	if r.code != exitOK || strings.Contains(r.stderr, "[y/N]") || !strings.Contains(r.stdout, "destroyed") {
		t.Errorf("--yes on a terminal: want no question:\n%v", r)
	}
}
