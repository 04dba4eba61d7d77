package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive flock on path (created if needed) and writes
// this process's pid into it, so that a second daemon on the same data
// folder (or a second simulator on the same pty path) can say who holds
// it. The lock is the kernel's: a killed process releases it at once, so
// a stale file never blocks a start. what names the thing locked in the
// error ("the data folder dir").
func lockFile(path, what string) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f.Chmod(0o600) // also one made before with a wider mode
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			b := make([]byte, 32)
			n, _ := f.ReadAt(b, 0)
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b[:n]))); perr == nil && pid > 0 {
				return nil, fmt.Errorf("already running (pid %d) on %s", pid, what)
			}
			return nil, fmt.Errorf("already running on %s (%s is locked)", what, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		// Emptied, not removed: removing it would let a third process
		// lock a new file while a second still waits on the old one.
		f.Truncate(0)
		f.Close()
	}, nil
}
