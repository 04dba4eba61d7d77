package hw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/hw/sim"
	"github.com/outpost-sms/outpost/pdu"
)

// rig is a supervised ATModem whose port is a net.Pipe to a simulated modem.
type rig struct {
	t      *testing.T
	net    *sim.Network
	sim    *sim.Modem
	modem  *ATModem
	mu     sync.Mutex
	ends   []net.Conn
	opens  int
	status chan Status
}

func newRig(t *testing.T, mut func(*Config)) *rig {
	r := &rig{t: t, net: sim.NewNetwork(nil), status: make(chan Status, 1000)}
	r.sim = r.net.NewModem("+15555550123")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	cfg := Config{
		ID: "m1", Device: "pipe",
		Open: func() (io.ReadWriteCloser, error) {
			a, b := net.Pipe()
			r.mu.Lock()
			r.ends = append(r.ends, b)
			r.opens++
			r.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); r.sim.Serve(ctx, b); b.Close() }()
			return a, nil
		},
		CommandTimeout: 2 * time.Second, SendTimeout: 5 * time.Second, StatusInterval: 200 * time.Millisecond,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Log:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnStatus: func(s Status) { r.status <- s },
	}
	if mut != nil {
		mut(&cfg)
	}
	r.modem = Start(cfg)
	t.Cleanup(func() {
		r.modem.Close()
		cancel()
		wg.Wait()
		r.net.Wait()
	})
	return r
}

func (r *rig) waitState(state string) Status {
	r.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-r.status:
			if s.State == state {
				return s
			}
		case <-deadline:
			s, _ := r.modem.Status(context.Background())
			r.t.Fatalf("modem never reached %s; now %+v", state, s)
		}
	}
}

func (r *rig) next() Inbound {
	r.t.Helper()
	select {
	case in := <-r.modem.Incoming():
		return in
	case <-time.After(10 * time.Second):
		r.t.Fatal("no inbound message")
	}
	return Inbound{}
}

func TestSendEchoAndStatusReport(t *testing.T) {
	r := newRig(t, nil)
	st := r.waitState(StateReady)
	ctx := context.Background()
	st, _ = r.modem.Status(ctx)
	if st.IMEI != r.sim.IMEI || st.Operator != "Outpost Sim" || !st.Registered || st.SignalDBm != -71 || st.StatusReport != "stored (+CDSI)" {
		t.Fatalf("status %+v", st)
	}
	parts, err := (&pdu.Encoder{}).Encode(pdu.Outgoing{To: sim.EchoNumber, Text: "hi", Report: true})
	if err != nil {
		t.Fatal(err)
	}
	mr, err := r.modem.SendPDU(ctx, parts[0].TPDU)
	if err != nil || mr != 1 {
		t.Fatalf("mr %d err %v", mr, err)
	}
	var gotEcho, gotReport bool
	for !(gotEcho && gotReport) {
		in := r.next()
		m, err := pdu.Decode(in.PDU)
		if err != nil {
			t.Fatal(err)
		}
		if in.Slot == 0 {
			t.Fatalf("stored message without slot: %+v", in)
		}
		switch {
		case in.Report && m.Type == pdu.StatusReport && m.MessageReference == mr && m.Number == sim.EchoNumber:
			gotReport = true
		case !in.Report && m.Text == "echo: hi" && m.Number == sim.EchoNumber:
			gotEcho = true
		default:
			t.Fatalf("unexpected %+v %+v", in, m)
		}
		if r.sim.Stored() == 0 {
			t.Fatal("message deleted before Ack")
		}
		if err := r.modem.Ack(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.sim.Stored(); n != 0 {
		t.Fatalf("%d messages left on SIM after Ack", n)
	}
}

func TestSweepAtStartReadsStoredMessages(t *testing.T) {
	r := newRig(t, nil)
	r.waitState(StateReady)
	// Unplug, store while away, reconnect: the sweep must find it.
	r.sim.SetFaults(sim.Faults{Hang: true})
	r.waitState(StateDisconnected)
	if err := r.sim.Inject("07915155555500F0040B915155555501F000006220112143544005E8329BFD06", false); err != nil {
		t.Fatal(err)
	}
	r.sim.SetFaults(sim.Faults{})
	r.waitState(StateReady)
	in := r.next()
	m, err := pdu.Decode(in.PDU)
	if err != nil || m.Text != "hello" {
		t.Fatalf("%+v %v", m, err)
	}
	// Not acked: a sweep must not hand it up twice while in flight.
	if err := r.modem.sweep(context.Background(), r.modem.current()); err != nil {
		t.Fatal(err)
	}
	select {
	case in := <-r.modem.Incoming():
		t.Fatalf("handed up twice: %+v", in)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestUnplugReconnects(t *testing.T) {
	r := newRig(t, nil)
	r.waitState(StateReady)
	r.mu.Lock()
	r.ends[len(r.ends)-1].Close()
	r.mu.Unlock()
	s := r.waitState(StateDisconnected)
	if !strings.Contains(s.Error, "closed") {
		t.Fatalf("error %q", s.Error)
	}
	s = r.waitState(StateReady)
	if s.Reconnects != 1 {
		t.Fatalf("reconnects %d", s.Reconnects)
	}
	if _, err := r.modem.SendPDU(context.Background(), mustEncode(t, "after")); err != nil {
		t.Fatal(err)
	}
}

func TestTypedSendErrors(t *testing.T) {
	r := newRig(t, nil)
	r.waitState(StateReady)
	r.sim.SetFaults(sim.Faults{SendError: 500})
	_, err := r.modem.SendPDU(context.Background(), mustEncode(t, "x"))
	var cms *CMSError
	if !errors.As(err, &cms) || cms.Code != 500 || cms.Permanent() {
		t.Fatalf("got %v", err)
	}
	r.sim.SetFaults(sim.Faults{NoNetwork: true})
	_, err = r.modem.SendPDU(context.Background(), mustEncode(t, "x"))
	if !errors.As(err, &cms) || cms.Code != 331 {
		t.Fatalf("got %v", err)
	}
}

func TestDirectDeliveryAckedWithCNMA(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Direct = true })
	r.waitState(StateReady)
	ctx := context.Background()
	if _, err := r.modem.SendPDU(ctx, mustEncode(t, "direct")); err != nil {
		t.Fatal(err)
	}
	in := r.next()
	if !in.Direct || in.Slot != 0 {
		t.Fatalf("want direct delivery, got %+v", in)
	}
	if err := r.modem.Ack(ctx, in); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range r.sim.Commands() {
		found = found || c == "AT+CNMA"
	}
	if !found {
		t.Fatal("no AT+CNMA sent")
	}
}

func TestWrongPINIsNotRetried(t *testing.T) {
	r := newRig(t, func(c *Config) { c.PIN = "1111" })
	r.sim.SetFaults(sim.Faults{PIN: "1234"})
	s := r.waitState(StateFailed)
	if !strings.Contains(s.Error, "PIN") {
		t.Fatalf("error %q", s.Error)
	}
	n := 0
	for _, c := range r.sim.Commands() {
		if strings.HasPrefix(c, "AT+CPIN=") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("PIN tried %d times", n)
	}
}

func TestPINUnlock(t *testing.T) {
	r := newRig(t, func(c *Config) { c.PIN = "1234" })
	r.sim.SetFaults(sim.Faults{PIN: "1234"})
	r.waitState(StateReady)
}

func mustEncode(t *testing.T, text string) []byte {
	parts, err := (&pdu.Encoder{}).Encode(pdu.Outgoing{To: sim.EchoNumber, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	return parts[0].TPDU
}

// staleOK is a port on which AT+CPIN? is answered by a bare OK: an answer
// left over from an earlier client (a killed daemon's half-typed command
// answered late) taken for this one, the modem's own answer consumed.
type staleOK struct {
	net.Conn
	mu      sync.Mutex
	pending []byte
	done    bool
}

func (s *staleOK) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done && strings.Contains(string(p), "AT+CPIN?") {
		s.done, s.pending = true, []byte("\r\nOK\r\n")
		return len(p), nil
	}
	return s.Conn.Write(p)
}

func (s *staleOK) Read(p []byte) (int, error) {
	for {
		s.mu.Lock()
		if len(s.pending) > 0 {
			n := copy(p, s.pending)
			s.pending = s.pending[n:]
			s.mu.Unlock()
			return n, nil
		}
		done := s.done
		s.mu.Unlock()
		if done {
			return s.Conn.Read(p)
		}
		// Until the stale answer is out, read the pipe in short turns
		// so that the answer is not stuck behind a blocked read.
		s.Conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := s.Conn.Read(p)
		s.Conn.SetReadDeadline(time.Time{})
		if ne, ok := err.(net.Error); ok && ne.Timeout() && n == 0 {
			continue
		}
		return n, err
	}
}

// TestStaleAnswerIsNotASIMState: an AT+CPIN? answered with no +CPIN line
// is not a SIM that "needs attention" (a permanent failure until a
// restart, seen after a kill -9 mid-send): the modem connects again and
// is ready.
func TestStaleAnswerIsNotASIMState(t *testing.T) {
	var mu sync.Mutex
	first := true
	r := newRig(t, func(c *Config) {
		open := c.Open
		c.Open = func() (io.ReadWriteCloser, error) {
			p, err := open()
			mu.Lock()
			defer mu.Unlock()
			if err == nil && first {
				first = false
				return &staleOK{Conn: p.(net.Conn)}, nil
			}
			return p, err
		}
	})
	r.waitState(StateReady)
	r.mu.Lock()
	opens := r.opens
	r.mu.Unlock()
	if opens < 2 {
		t.Fatalf("ready after %d opens: the stale answer was not noticed", opens)
	}
}

// A modem unplugged during its start (the port closed under +CMGF) is
// tried again when it comes back; only a modem that answers ERROR to
// what it must support is given up on.
func TestInitRefusedForGoodOnlyOnAnAnswer(t *testing.T) {
	var perm *permanentError
	closed := fmt.Errorf("AT+CMGF=0: port closed (modem unplugged?): %w", ErrNotReady)
	if err := refusedForGood(closed, "init: PDU mode not supported: %w"); errors.As(err, &perm) {
		t.Errorf("a closed port made permanent: %v", err)
	}
	answered := fmt.Errorf("AT+CMGF=0: %w", &CMEError{Code: 4, Text: "operation not supported"})
	if err := refusedForGood(answered, "init: PDU mode not supported: %w"); !errors.As(err, &perm) {
		t.Errorf("an ERROR answer not permanent: %v", err)
	}
}

// A port the supervisor closed while AT+CMGS was being written (a hung
// modem being reset, serial.go) is the modem's failure, an outage: the
// part goes to another modem and no attempt of the message is counted.
// It read as an unknown error, retried and counted (TestModemFailover:
// "sent after 2 attempts").
func TestWriteToClosedPortIsAnOutage(t *testing.T) {
	m := &ATModem{}
	err := m.atError(&conn{hung: make(chan struct{})}, "+CMGS=20", fmt.Errorf("write: %w", errPortClosed))
	if !errors.Is(err, ErrNotReady) || Classify(err) != Outage {
		t.Errorf("%v: %s, want an outage (ErrNotReady)", err, Classify(err))
	}
}
