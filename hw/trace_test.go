package hw

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/outpost-sms/outpost/hw/sim"
	"github.com/warthog618/modem/at"
)

// syncBuffer is a log destination shared by the modem's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// traced splits a JSON log into the AT trace's written and read streams,
// each joined up as the wire carried it.
func traced(t *testing.T, log string) (written, read string) {
	t.Helper()
	var w, r strings.Builder
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var rec struct{ Msg string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		dir, q, ok := strings.Cut(rec.Msg, ": ")
		if !ok || dir != "w" && dir != "r" {
			continue
		}
		s, err := strconv.Unquote(q)
		if err != nil {
			continue
		}
		if dir == "w" {
			w.WriteString(s)
		} else {
			r.WriteString(s)
		}
	}
	return w.String(), r.String()
}

// simOnPTY serves a simulated modem on a pty in a temporary folder and
// returns its device path.
func simOnPTY(t *testing.T, faults sim.Faults) (string, *sim.Modem) {
	t.Helper()
	n := sim.NewNetwork(nil)
	sm := n.NewModem("+15555550123")
	sm.SetFaults(faults)
	p, err := sim.OpenPTY(filepath.Join(t.TempDir(), "modem"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Serve(ctx, sm) }()
	t.Cleanup(func() {
		cancel()
		p.Close()
		<-done
		n.Wait()
	})
	return p.Path, sm
}

// echoingPort is a serial port to a modem that ignores ATE0 (some do) and
// so echoes every command, the PIN too; its reads come one byte at a time,
// so the echo reaches the trace in pieces.
type echoingPort struct {
	io.Reader
	port io.ReadWriteCloser
}

func (e echoingPort) Write(p []byte) (int, error) {
	if string(p) == "ATE0\r\n" {
		if _, err := e.port.Write([]byte("AT\r\n")); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return e.port.Write(p)
}

func (e echoingPort) Close() error { return e.port.Close() }

// TestTraceMasksPIN runs the modem code over the serial code and a pty to
// the simulated modem, with a SIM PIN and log_level trace: the PIN must be
// in no log line, neither as written nor in the modem's echo, and not in
// the status error when the SIM refuses it.
func TestTraceMasksPIN(t *testing.T) {
	const pin = "4321"
	for _, c := range []struct {
		name   string
		simPIN string
		state  string
	}{
		{"accepted", pin, StateReady},
		{"refused", "1234", StateFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, sm := simOnPTY(t, sim.Faults{PIN: c.simPIN})
			var logs syncBuffer
			status := make(chan Status, 100)
			open := OpenSerial(path, 115200)
			m := Start(Config{
				ID: "m1", Device: path, PIN: pin,
				Open: func() (io.ReadWriteCloser, error) {
					p, err := open()
					if err != nil {
						return nil, err
					}
					return echoingPort{Reader: iotest.OneByteReader(p), port: p}, nil
				},
				CommandTimeout: 5 * time.Second,
				// No timestamps: their nanoseconds hold the PIN's digits
				// now and then ("…05:28:47.266574321Z"), a false alarm.
				Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: LevelTrace, ReplaceAttr: dropTime})),
				OnStatus: func(s Status) {
					select {
					case status <- s:
					default:
					}
				},
			})
			var st Status
			deadline := time.After(20 * time.Second)
			for st.State != c.state {
				select {
				case st = <-status:
				case <-deadline:
					t.Fatalf("modem never %s; last status %+v", c.state, st)
				}
			}
			m.Close()

			sent := false
			for _, cmd := range sm.Commands() {
				sent = sent || cmd == `AT+CPIN="`+pin+`"`
			}
			if !sent {
				t.Fatalf("the modem never got the PIN: %q", sm.Commands())
			}
			log := logs.String()
			if strings.Contains(log, pin) {
				t.Errorf("the PIN is in the log:\n%s", log)
			}
			if strings.Contains(st.Error, pin) {
				t.Errorf("the PIN is in the status error %q", st.Error)
			}
			w, r := traced(t, log)
			if strings.Contains(w, pin) || strings.Contains(r, pin) {
				t.Errorf("the PIN is in the trace, in pieces:\nw %q\nr %q", w, r)
			}
			if !strings.Contains(w, `AT+CPIN="****"`+"\r\n") {
				t.Errorf("written trace lacks the masked PIN command:\n%q", w)
			}
			if !strings.Contains(r, `AT+CPIN="****"`+"\r") {
				t.Errorf("read trace lacks the masked echo:\n%q", r)
			}
			if !strings.Contains(r, "+CPIN: SIM PIN") || !strings.Contains(w, "AT+CPIN?") {
				t.Errorf("the trace lost the rest of the exchange:\nw %q\nr %q", w, r)
			}
		})
	}
}

// TestTraceMasksPasswords sends the other commands that carry secrets
// through the trace to the simulated modem, which echoes them (echo is on
// until ATE0): PUK and new PIN, a facility lock's password, old and new
// passwords; the other parameters stay readable.
func TestTraceMasksPasswords(t *testing.T) {
	path, _ := simOnPTY(t, sim.Faults{})
	port, err := OpenSerial(path, 115200)()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	a := at.New(newTrace(port, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: LevelTrace, ReplaceAttr: dropTime}))), at.WithTimeout(5*time.Second))
	for _, cmd := range []string{
		`+CPIN="87654321","4321"`,
		`+CLCK="SC",1,"4321"`,
		`+clck="SC",0,"4321",7`,
		`+CLCK="SC",2`,
		`+CPWD="SC","4321","9876"`,
		`+CPIN2=5555`,
	} {
		a.Command(cmd) // the simulator refuses some: only the trace matters
	}
	port.Close()
	<-a.Closed()
	log := logs.String()
	for _, secret := range []string{"87654321", "4321", "9876", "5555"} {
		if strings.Contains(log, secret) {
			t.Errorf("%s is in the log:\n%s", secret, log)
		}
	}
	w, r := traced(t, log)
	for _, want := range []string{
		`AT+CPIN="****","****"`,
		`AT+CLCK="SC",1,"****"`,
		`AT+clck="SC",0,"****",7`,
		`AT+CLCK="SC",2`,
		`AT+CPWD="SC","****","****"`,
		`AT+CPIN2=****`,
	} {
		if !strings.Contains(w, want+"\r\n") {
			t.Errorf("written trace lacks %s:\n%q", want, w)
		}
		if !strings.Contains(r, want+"\r") {
			t.Errorf("read trace (the echo) lacks %s:\n%q", want, r)
		}
	}
}

// dropTime leaves the time out of log records.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
