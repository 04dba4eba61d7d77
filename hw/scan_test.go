package hw

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/hw/sim"
)

// plugged serves a simulated modem on a pty at path until unplug.
func plugged(t *testing.T, m *sim.Modem, path string) (unplug func()) {
	t.Helper()
	p, err := sim.OpenPTY(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Serve(ctx, m) }()
	var once bool
	unplug = func() {
		if once {
			return
		}
		once = true
		p.Close()
		cancel()
		<-done
	}
	t.Cleanup(unplug)
	return unplug
}

// Two modems on ptys: the one configured by IMEI is found whatever its
// path, the other left alone; moved to another path, it is found again.
func TestBinderFindsModemByIMEI(t *testing.T) {
	dir := t.TempDir()
	n := sim.NewNetwork(nil)
	a, b := n.NewModem("+15555550201"), n.NewModem("+15555550202")
	plugged(t, a, filepath.Join(dir, "a.pty"))
	unplugB := plugged(t, b, filepath.Join(dir, "b.pty"))

	ports, err := Ports([]string{filepath.Join(dir, "*.pty")})
	if err != nil || len(ports) != 2 {
		t.Fatalf("ports: %v %+v", err, ports)
	}
	info := Probe(ports[1].Path, 115200, time.Second)
	if !info.AT || info.IMEI != b.IMEI || info.ICCID != b.ICCID || info.Operator != "Outpost Sim" {
		t.Errorf("probe of b.pty: %+v", info)
	}

	binder := &Binder{Timeout: 500 * time.Millisecond}
	m := Start(Config{ID: "m2", Open: binder.Opener("m2", Identity{IMEI: b.IMEI}, []string{filepath.Join(dir, "*.pty")}),
		CommandTimeout: time.Second, SendTimeout: 2 * time.Second, BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { m.Close() })
	s := waitStatus(t, m, "the modem found by IMEI", func(s Status) bool { return s.State == StateReady })
	if s.Device != filepath.Join(dir, "b.pty") || s.IMEI != b.IMEI {
		t.Fatalf("bound to %s (IMEI %s), want b.pty (%s)", s.Device, s.IMEI, b.IMEI)
	}

	unplugB()
	s = waitStatus(t, m, "the unplug seen", func(s Status) bool { return s.State != StateReady })
	s = waitStatus(t, m, "the search to fail", func(s Status) bool { return strings.Contains(s.Error, "no port answers with IMEI "+b.IMEI) })
	plugged(t, b, filepath.Join(dir, "moved.pty"))
	s = waitStatus(t, m, "the modem found again", func(s Status) bool { return s.State == StateReady })
	if s.Device != filepath.Join(dir, "moved.pty") {
		t.Errorf("found again at %s, want moved.pty", s.Device)
	}
	// Hung where it was found: still bound there (it cannot say who it
	// is), so it is reset and comes back.
	f := b.Faults()
	f.Hang, f.ResetDelay = true, 100*time.Millisecond
	b.SetFaults(f)
	if _, err := m.SendPDU(context.Background(), testTPDU(t)); err == nil {
		t.Fatal("a send to a hung modem went through")
	}
	s = waitStatus(t, m, "the reset", func(s Status) bool { return s.Resets > 0 })
	s = waitStatus(t, m, "the modem back", func(s Status) bool { return s.State == StateReady })
	if s.Device != filepath.Join(dir, "moved.pty") || b.Resets() != 1 || !strings.Contains(s.LastReset, "AT+CFUN=1,1") {
		t.Errorf("after the hang: on %s, sim resets %d, last reset %q", s.Device, b.Resets(), s.LastReset)
	}
	if !(Identity{ICCID: strings.ToLower(b.ICCID[:len(b.ICCID)-1])}).matches(PortInfo{ICCID: b.ICCID}) {
		t.Error("an ICCID without its padding F does not match")
	}
}
