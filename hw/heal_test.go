package hw

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/hw/sim"
)

// A modem that stops answering is reset with AT+CFUN=1,1 (it reaches the
// simulator through its hang), and comes back.
func TestHungModemResetByCFUN(t *testing.T) {
	r := newRig(t, func(c *Config) { c.CommandTimeout = 300 * time.Millisecond })
	r.waitState(StateReady)
	f := r.sim.Faults()
	f.Hang, f.ResetDelay = true, 100*time.Millisecond
	r.sim.SetFaults(f)
	if _, err := r.modem.SendPDU(context.Background(), testTPDU(t)); err == nil {
		t.Fatal("a send to a hung modem went through")
	}
	var s Status
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, _ = r.modem.Status(context.Background())
		if s.Resets > 0 && s.State == StateReady {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hung modem was not reset and back: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.sim.Resets() != 1 || s.Resets != 1 || !strings.Contains(s.LastReset, "AT+CFUN=1,1: sent") || s.Hangs < 2 {
		t.Errorf("sim resets %d; status resets %d, hangs %d, last %q", r.sim.Resets(), s.Resets, s.Hangs, s.LastReset)
	}
	if _, err := r.modem.SendPDU(context.Background(), testTPDU(t)); err != nil {
		// Searching for the network after the reset is fine; not answering is not.
		if Classify(err) != Outage {
			t.Errorf("after the reset: %v", err)
		}
	}
}

func testTPDU(t *testing.T) []byte {
	t.Helper()
	// SMS-SUBMIT to +15555550100, GSM 7-bit "hi".
	return []byte{0x11, 0x00, 0x0b, 0x91, 0x51, 0x55, 0x55, 0x05, 0x01, 0xf0, 0x00, 0x00, 0xff, 0x02, 0xe8, 0x34}
}

// fakeUSB builds a sysfs tree in which the tty name is a USB modem on hub
// port 2, with per-port power switching when withPort.
func fakeUSB(t *testing.T, tty string, withPort bool) (root, dev string) {
	root = t.TempDir()
	dev = filepath.Join(root, "devices/pci0000:00/usb1/1-1/1-1.2")
	iface := filepath.Join(dev, "1-1.2:1.0", "ttyUSB0")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(iface, 0o755))
	must(os.WriteFile(filepath.Join(dev, "idVendor"), []byte("1e0e\n"), 0o644))
	must(os.WriteFile(filepath.Join(dev, "authorized"), []byte("untouched"), 0o644))
	if withPort {
		port := filepath.Join(root, "devices/pci0000:00/usb1/1-1/1-1:1.0/1-1-port2")
		must(os.MkdirAll(port, 0o755))
		must(os.WriteFile(filepath.Join(port, "disable"), []byte("untouched"), 0o644))
		must(os.Symlink("../1-1:1.0/1-1-port2", filepath.Join(dev, "port")))
	}
	must(os.MkdirAll(filepath.Join(root, "class/tty", tty), 0o755))
	must(os.Symlink(iface, filepath.Join(root, "class/tty", tty, "device")))
	return root, dev
}

// deadPort is a pty nobody answers on: a modem that no command reaches.
func deadPort(t *testing.T) (path, tty string) {
	p, err := sim.OpenPTY(filepath.Join(t.TempDir(), "dead.pty"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	real, err := filepath.EvalSymlinks(p.Path)
	if err != nil {
		t.Fatal(err)
	}
	return p.Path, filepath.Base(real)
}

func startDead(t *testing.T, path, sysfs string, perHour int) *ATModem {
	m := Start(Config{ID: "m1", Device: path, Open: OpenSerial(path, 115200),
		CommandTimeout: 150 * time.Millisecond, BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
		Log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Heal: Heal{MaxPerHour: perHour, Sysfs: sysfs, Settle: 10 * time.Millisecond, PowerOff: 10 * time.Millisecond}})
	t.Cleanup(func() { m.Close() })
	return m
}

func waitStatus(t *testing.T, m *ATModem, what string, cond func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, _ := m.Status(context.Background())
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A modem that AT+CFUN=1,1 does not bring back climbs the ladder: its USB
// device re-authorised, then its hub port power-cycled (the files written
// in a fake sysfs are the check), and no more than the hourly limit.
func TestHealLadderOnFakeSysfs(t *testing.T) {
	path, tty := deadPort(t)
	sysfs, dev := fakeUSB(t, tty, true)
	m := startDead(t, path, sysfs, 3)
	s := waitStatus(t, m, "the hourly limit", func(s Status) bool { return strings.Contains(s.LastReset, "the limit") })
	if s.Resets != 3 {
		t.Errorf("resets %d, want 3 (the limit)", s.Resets)
	}
	if b, _ := os.ReadFile(filepath.Join(dev, "authorized")); string(b) != "1" {
		t.Errorf("authorized is %q, want 1 (written 0 then 1)", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dev, "port", "disable")); string(b) != "0" {
		t.Errorf("port/disable is %q, want 0 (written 1 then 0)", b)
	}
}

// Without per-port power switching, the last step says it cannot be
// done and the ladder goes back to AT+CFUN=1,1; a modem not on USB gets
// AT+CFUN=1,1 only, and says why.
func TestHealLadderWithoutPowerSwitching(t *testing.T) {
	path, tty := deadPort(t)
	sysfs, _ := fakeUSB(t, tty, false)
	m := startDead(t, path, sysfs, 10)
	s := waitStatus(t, m, "the power cycle found impossible", func(s Status) bool { return strings.Contains(s.LastReset, "USB power cycle not possible") })
	if !strings.Contains(s.LastReset, "cannot switch its port's power") || !strings.Contains(s.LastReset, "AT+CFUN=1,1: sent") {
		t.Errorf("last reset %q", s.LastReset)
	}

	path2, _ := deadPort(t)
	m2 := startDead(t, path2, t.TempDir(), 10)
	s = waitStatus(t, m2, "re-authorise found impossible", func(s Status) bool { return strings.Contains(s.LastReset, "re-authorise not possible") })
	if !strings.Contains(s.LastReset, "is not a USB device") {
		t.Errorf("last reset %q", s.LastReset)
	}
}

// Another program with the port open is named; ModemManager by name,
// with what to do about it.
func TestPortNoteNamesHolders(t *testing.T) {
	path, _ := deadPort(t)
	if n := PortNote("/proc", path); n != "" && !strings.Contains(n, "ModemManager (pid") {
		t.Errorf("nobody holds the port, yet: %q", n)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	mm := filepath.Join(t.TempDir(), "ModemManager")
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mm, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ bin, want string }{{sleep, "the port is also open in sleep (pid "}, {mm, "ModemManager (pid "}} {
		tty, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(c.bin, "30")
		cmd.Stdin = tty
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tty.Close()
		var n string
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(n, c.want) && time.Now().Before(deadline) {
			n = PortNote("/proc", path)
			time.Sleep(10 * time.Millisecond)
		}
		cmd.Process.Kill()
		cmd.Wait()
		if !strings.Contains(n, c.want) || c.bin == mm && !strings.Contains(n, "has the port open: stop it") {
			t.Errorf("%s holds the port: note %q, want %q", filepath.Base(c.bin), n, c.want)
		}
	}
}
