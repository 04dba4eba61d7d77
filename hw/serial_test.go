package hw

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/outpost-sms/outpost/hw/sim"
)

// TestWriteAfterCloseGoesNowhere: a write to a closed port fails and
// reaches no other file. go.bug.st/serial writes to its descriptor's
// number unchecked; the next file opened gets that number, and the AT
// engine's AT+CMGS, racing the supervisor's close of a hung modem, went
// into whatever that was (an API client's socket; the database).
func TestWriteAfterCloseGoesNowhere(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "modem.pty")
	p, err := sim.OpenPTY(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	port, err := OpenSerial(path, 115200)()
	if err != nil {
		t.Fatal(err)
	}
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
	// The lowest free descriptor: the port's, just closed.
	victim, err := os.Create(filepath.Join(dir, "outpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	if _, err := port.Write([]byte("AT+CMGS=20\r")); !errors.Is(err, errPortClosed) {
		t.Errorf("write after close: %v, want %v", err, errPortClosed)
	}
	if st, _ := victim.Stat(); st.Size() != 0 {
		b, _ := os.ReadFile(victim.Name())
		t.Errorf("the closed port's write went into another file: %q", b)
	}
	if err := port.Close(); err != nil {
		t.Errorf("a second close: %v", err)
	}
}
