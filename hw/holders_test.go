package hw

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeProc is a /proc with one process, pid 4242, whose descriptors
// point at links (a pts index for each /dev/ptmx one).
func fakeProc(t *testing.T, links []string, ptmxIndex string) string {
	t.Helper()
	root := t.TempDir()
	pid := filepath.Join(root, "4242")
	for _, d := range []string{"fd", "fdinfo"} {
		if err := os.MkdirAll(filepath.Join(pid, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(pid, "comm"), []byte("outpost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, l := range links {
		fd := filepath.Join(pid, "fd", string(rune('0'+i)))
		if err := os.Symlink(l, fd); err != nil {
			t.Fatal(err)
		}
		if l == "/dev/ptmx" {
			if err := os.WriteFile(filepath.Join(pid, "fdinfo", string(rune('0'+i))), []byte("pos:\t0\ntty-index:\t"+ptmxIndex+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// A simulator (the pty's master and its own keep-alive descriptor of the
// terminal side) is the modem, not a holder; a daemon that runs its
// simulated modems in-process also has the terminal side open as their
// user, and a scan that probed the port would steal its traffic.
func TestHoldersPtyInProcessSimulator(t *testing.T) {
	path, idx := deadPort(t)
	tty := "/dev/pts/" + idx
	if hs, err := Holders(fakeProc(t, []string{"/dev/ptmx", tty}, idx), path); err != nil || len(hs) != 0 {
		t.Errorf("a simulator alone: holders %v, %v; want none", hs, err)
	}
	if hs, err := Holders(fakeProc(t, []string{"/dev/ptmx", tty, tty}, idx), path); err != nil || len(hs) != 1 || hs[0].PID != 4242 {
		t.Errorf("a daemon with an in-process simulator using the port: holders %v, %v; want pid 4242", hs, err)
	}
	if hs, err := Holders(fakeProc(t, []string{tty}, ""), path); err != nil || len(hs) != 1 {
		t.Errorf("a program with the port open: holders %v, %v; want it", hs, err)
	}
}

// A scan's glob may match any device (/dev/*): only serial ports are
// listed, so none other is opened (opening /dev/watchdog arms it) and no
// AT is written to a console (/dev/console, the virtual terminals) or to
// the user's terminal (/dev/tty).
func TestPortsAreSerialOnly(t *testing.T) {
	path, _ := deadPort(t)
	var globs []string
	for _, d := range []string{"/dev/null", "/dev/zero", "/dev/random", "/dev/kmsg", "/dev/tty", "/dev/console", "/dev/tty0", "/dev/tty1", "/dev/ptmx"} {
		if _, err := os.Stat(d); err == nil {
			globs = append(globs, d)
		}
	}
	if len(globs) < 5 {
		t.Fatalf("too few devices to try: %v", globs)
	}
	ports, err := Ports(append(globs, path))
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 1 || ports[0].Path != path {
		t.Errorf("ports of %v and a pty: %+v; want the pty alone", globs, ports)
	}
}
