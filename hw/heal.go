package hw

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Heal configures how a hung modem is brought back: a modem that stopped
// answering (a command or a send went unanswered for its whole timeout)
// twice in a row, the reconnect between not helping, is reset: first
// AT+CFUN=1,1, then by re-authorising its USB device, then by switching
// its hub port's power off and on, each step once per hang, in that
// order, at most MaxPerHour steps in an hour.
type Heal struct {
	// MaxPerHour bounds the reset steps in any hour (default 6; -1
	// turns resets off).
	MaxPerHour int
	// Sysfs and Proc are where the kernel's views are ("/sys", "/proc";
	// tests give a fake tree).
	Sysfs, Proc string
	// Settle is the wait after a USB step for the device to come back
	// (default 5s); PowerOff how long a port stays unpowered (default 2s).
	Settle, PowerOff time.Duration
}

func (h *Heal) defaults() {
	if h.MaxPerHour == 0 {
		h.MaxPerHour = 6
	}
	if h.Sysfs == "" {
		h.Sysfs = "/sys"
	}
	if h.Proc == "" {
		h.Proc = "/proc"
	}
	if h.Settle == 0 {
		h.Settle = 5 * time.Second
	}
	if h.PowerOff == 0 {
		h.PowerOff = 2 * time.Second
	}
}

// errHung marks a session that ended because the modem stopped answering.
type errHung struct{ err error }

func (e errHung) Error() string { return e.err.Error() }
func (e errHung) Unwrap() error { return e.err }

// healStep is one rung of the ladder; run says what it did, or an error
// when it could not be done at all (the next rung is tried at once).
type healStep struct {
	name string
	run  func(m *ATModem, ctx context.Context, device string) (string, error)
}

var ladder = []healStep{
	{"AT+CFUN=1,1", (*ATModem).resetCFUN},
	{"USB re-authorise", (*ATModem).reauthorise},
	{"USB power cycle", (*ATModem).powerCycle},
}

// healthy notes that the modem works (a session ended otherwise than by a
// hang, or a send went through): the next hang starts the ladder again.
func (m *ATModem) healthy() {
	m.mu.Lock()
	m.hungStreak, m.rung = 0, 0
	m.mu.Unlock()
}

// afterSession counts a hang and, on the second in a row, runs the next
// step of the ladder.
func (m *ATModem) afterSession(ctx context.Context, err error) {
	var hung errHung
	if !errors.As(err, &hung) {
		m.healthy()
		return
	}
	m.mu.Lock()
	m.hungStreak++
	streak, device := m.hungStreak, m.status.Device
	m.mu.Unlock()
	m.setStatus(func(s *Status) { s.Hangs++ })
	// One reconnect first: a lone timeout may be the line's, or a slow
	// moment, not a stuck modem.
	if streak < 2 || m.cfg.Heal.MaxPerHour < 0 {
		return
	}
	m.mu.Lock()
	kept := m.resetTimes[:0]
	for _, t := range m.resetTimes {
		if time.Since(t) < time.Hour {
			kept = append(kept, t)
		}
	}
	m.resetTimes = kept
	limited := len(kept) >= m.cfg.Heal.MaxPerHour
	m.mu.Unlock()
	if limited {
		m.log.Warn("modem hung; reset limit reached, only reconnecting", "per_hour", m.cfg.Heal.MaxPerHour)
		m.setStatus(func(s *Status) {
			s.LastReset = fmt.Sprintf("none: %d resets in the last hour (the limit)", m.cfg.Heal.MaxPerHour)
		})
		return
	}
	var notes []string
	for range ladder {
		m.mu.Lock()
		step := ladder[m.rung%len(ladder)]
		m.rung++
		m.mu.Unlock()
		did, err := step.run(m, ctx, device)
		if err != nil {
			m.log.Warn("modem hung; reset step not possible", "step", step.name, "err", err)
			notes = append(notes, step.name+" not possible: "+err.Error())
			continue
		}
		m.mu.Lock()
		m.resetTimes = append(m.resetTimes, time.Now())
		m.mu.Unlock()
		m.log.Warn("modem hung; reset", "step", step.name, "result", did, "device", device)
		m.setStatus(func(s *Status) {
			s.Resets++
			s.LastReset = strings.Join(append(notes, step.name+": "+did), "; ")
			s.ResetAt = time.Now()
		})
		return
	}
	m.setStatus(func(s *Status) { s.LastReset = strings.Join(notes, "; ") })
}

// resetCFUN restarts the modem with AT+CFUN=1,1, sent raw on a fresh
// connection after ESC (a modem stuck at the SMS prompt takes nothing
// else). Whether it answers OK does not matter: many reset first.
func (m *ATModem) resetCFUN(ctx context.Context, device string) (string, error) {
	port, err := m.cfg.Open()
	if errors.Is(err, ErrNotFound) && device != "" {
		// Found by identity, which a hung modem cannot tell: reset it
		// where it was last.
		port, err = OpenSerial(device, 115200)()
	}
	if err != nil {
		return "", fmt.Errorf("open: %w", err)
	}
	defer port.Close()
	if _, err := port.Write([]byte("\x1b\r\nAT+CFUN=1,1\r")); err != nil {
		return "", fmt.Errorf("write: %w", err)
	}
	got := make(chan bool, 1)
	go func() {
		var seen []byte
		buf := make([]byte, 256)
		for {
			n, err := port.Read(buf)
			seen = append(seen, buf[:n]...)
			if strings.Contains(string(seen), "OK\r\n") {
				got <- true
				return
			}
			if err != nil {
				got <- false
				return
			}
		}
	}()
	select {
	case ok := <-got:
		if ok {
			return "sent; the modem answered OK", nil
		}
	case <-time.After(m.cfg.CommandTimeout):
	case <-ctx.Done():
	}
	return "sent; no answer", nil
}

// usbDevice finds the sysfs folder of the USB device behind a tty: the
// first folder up from its class/tty entry that has idVendor and
// authorized.
func usbDevice(sysfs, device string) (string, error) {
	real, err := filepath.EvalSymlinks(device)
	if err != nil {
		return "", err
	}
	link := filepath.Join(sysfs, "class", "tty", filepath.Base(real), "device")
	dir, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", fmt.Errorf("%s is not a USB device (no %s)", device, link)
	}
	root := filepath.Clean(sysfs)
	for d := dir; strings.HasPrefix(d, root+"/"); d = filepath.Dir(d) {
		_, e1 := os.Stat(filepath.Join(d, "idVendor"))
		_, e2 := os.Stat(filepath.Join(d, "authorized"))
		if e1 == nil && e2 == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("%s is not on USB (no device with idVendor above %s)", device, dir)
}

// reauthorise unbinds and rebinds the USB device (authorized 0, then 1):
// the kernel drops and re-enumerates it, as if replugged, without power.
func (m *ATModem) reauthorise(ctx context.Context, device string) (string, error) {
	dir, err := usbDevice(m.cfg.Heal.Sysfs, device)
	if err != nil {
		return "", err
	}
	f := filepath.Join(dir, "authorized")
	if err := os.WriteFile(f, []byte("0"), 0); err != nil {
		return "", err
	}
	sleep(ctx, time.Second)
	if err := os.WriteFile(f, []byte("1"), 0); err != nil {
		return "", err
	}
	sleep(ctx, m.cfg.Heal.Settle)
	return "wrote 0 then 1 to " + f, nil
}

// powerCycle switches the power of the hub port the modem is on off and
// on (port/disable, where the hub supports per-port power switching).
func (m *ATModem) powerCycle(ctx context.Context, device string) (string, error) {
	dir, err := usbDevice(m.cfg.Heal.Sysfs, device)
	if err != nil {
		return "", err
	}
	f := filepath.Join(dir, "port", "disable")
	if _, err := os.Stat(f); err != nil {
		return "", fmt.Errorf("the hub of %s cannot switch its port's power (no %s)", filepath.Base(dir), f)
	}
	if err := os.WriteFile(f, []byte("1"), 0); err != nil {
		return "", err
	}
	sleep(ctx, m.cfg.Heal.PowerOff)
	if err := os.WriteFile(f, []byte("0"), 0); err != nil {
		return "", err
	}
	sleep(ctx, m.cfg.Heal.Settle)
	return "wrote 1 then 0 to " + f, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
