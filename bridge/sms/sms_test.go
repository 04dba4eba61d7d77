package sms_test

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/bridge/sms"
	"github.com/outpost-sms/outpost/hw"
	"github.com/outpost-sms/outpost/hw/sim"
	"github.com/outpost-sms/outpost/store"
)

// app is a destination for inbound messages that records what it got.
type app struct {
	mu  sync.Mutex
	got []store.Message
}

func (a *app) Name() string                                    { return "app" }
func (a *app) Run(ctx context.Context, _ *bridge.Router) error { <-ctx.Done(); return nil }
func (a *app) Deliver(_ context.Context, m store.Message, _ store.Delivery) (bridge.Outcome, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, m)
	return bridge.Outcome{State: store.Delivered}, nil
}

func (a *app) all() []store.Message {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]store.Message(nil), a.got...)
}

func (a *app) texts() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, m := range a.got {
		if m.Text != nil {
			out = append(out, *m.Text)
		}
	}
	return out
}

type rig struct {
	router *bridge.Router
	conn   *sms.Connector
	app    *app
	sim    *sim.Modem
	modem  *hw.ATModem
}

// newRig runs the hub with the SMS connector on a real ATModem whose
// serial port is a net.Pipe to a simulated modem (modem is nil: no modem).
func newRig(t *testing.T, withModem bool) *rig {
	t.Helper()
	return newRigWith(t, withModem, nil, nil)
}

// newRigWith is newRig with the modem's config changed by mut and the
// connector by conn before anything runs.
func newRigWith(t *testing.T, withModem bool, mut func(*hw.Config), conn func(*sms.Connector)) *rig {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r := &rig{router: bridge.New(st, nil), app: &app{}}
	r.router.Routes = []string{"app"}
	modems := map[string]hw.Modem{}
	var m *hw.ATModem
	network := sim.NewNetwork(nil)
	if withModem {
		r.sim = network.NewModem("+15555550123")
		cfg := hw.Config{
			ID: "m1", Device: "pipe",
			Open: func() (io.ReadWriteCloser, error) {
				a, b := net.Pipe()
				wg.Add(1)
				go func() { defer wg.Done(); r.sim.Serve(ctx, b); b.Close() }()
				return a, nil
			},
			CommandTimeout: 2 * time.Second, SendTimeout: 5 * time.Second,
		}
		if mut != nil {
			mut(&cfg)
		}
		m = hw.Start(cfg)
		r.modem = m
		modems["m1"] = m
	}
	r.conn = sms.New(r.router, modems)
	if conn != nil {
		conn(r.conn)
	}
	r.router.Add(r.conn)
	r.router.Add(r.app)
	wg.Add(1)
	go func() { defer wg.Done(); r.router.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if m != nil {
			m.Close()
		}
		wg.Wait()
		network.Wait()
		st.Close()
	})
	return r
}

func (r *rig) waitState(t *testing.T, id, state string) bridge.MessageView {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		v, err := r.router.Message(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if v.State == state {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("message is %q, want %q; events %+v", v.State, state, v.Events)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) waitApp(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := 0
		for _, got := range r.app.texts() {
			if got == text {
				n++
			}
		}
		if n == 1 {
			return
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("%q reached the app %d times; it got %q", text, n, r.app.texts())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSendDeliveredAndEchoRouted(t *testing.T) {
	r := newRig(t, true)
	for _, c := range []struct {
		text  string
		parts int
	}{{"hello", 1}, {strings.Repeat("ten chars ", 40), 3}, {"Ünïcødé 😀 " + strings.Repeat("ж", 80), 2}} {
		text := c.text
		id, err := r.router.Submit(context.Background(), bridge.SendRequest{To: []string{"+15555550100"}, Text: text, Report: true, Source: "test"})
		if err != nil {
			t.Fatal(err)
		}
		v := r.waitState(t, id, store.Delivered)
		reports := 0
		for _, e := range v.Events {
			if strings.Contains(e.Detail, "received by the recipient (TP-ST 0)") {
				reports++
			}
		}
		if reports != c.parts {
			t.Errorf("%d status reports in the history, want one per part (%d): %+v", reports, c.parts, v.Events)
		}
		r.waitApp(t, "echo: "+text)
	}
	inbox, err := r.router.Inbox(context.Background(), 10)
	if err != nil || len(inbox) != 3 {
		t.Fatalf("inbox %d messages, %v", len(inbox), err)
	}
	if inbox[1].Parts != 3 || inbox[1].Peer != "+15555550100" || inbox[1].Modem != "m1" {
		t.Errorf("long echo: %+v", inbox[1].Message)
	}
}

// An SMS-DELIVER from a real phone (from Gammu's test suite): "Outpost".
const deliverHex = "0791198948004544040C9119894882006200007050307040042206CF35689E9603"

// A message handed up again before its Ack (the daemon died between the
// commit and AT+CMGD) is recognised; once acknowledged and released, the
// same bytes are a new message (the same text, same second, same sender).
func TestRereadRecognisedUntilReleased(t *testing.T) {
	r := newRig(t, false)
	raw, _ := hex.DecodeString(deliverHex)
	in := hw.Inbound{Modem: "m1", PDU: raw, Slot: 3}
	key, err := r.conn.HandleInbound(context.Background(), in)
	if err != nil || key == "" {
		t.Fatalf("first: key %q, %v", key, err)
	}
	if key2, err := r.conn.HandleInbound(context.Background(), in); err != nil || key2 != key {
		t.Fatalf("re-read: key %q, %v", key2, err)
	}
	inbox, _ := r.router.Inbox(context.Background(), 10)
	if len(inbox) != 1 {
		t.Fatalf("a re-read made %d messages", len(inbox))
	}
	if err := r.router.Store.Update(context.Background(), func(tx *store.Tx) error { return tx.ReleaseDedupKey(key) }); err != nil {
		t.Fatal(err)
	}
	if _, err := r.conn.HandleInbound(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	inbox, _ = r.router.Inbox(context.Background(), 10)
	if len(inbox) != 2 || *inbox[0].Text != *inbox[1].Text {
		t.Fatalf("after release: %+v", inbox)
	}
}

func TestUndecodableKeptRaw(t *testing.T) {
	r := newRig(t, false)
	raw := []byte{0x07, 0x91, 0x19, 0x89, 0x48, 0x00, 0x45, 0x44, 0x04, 0x0C, 0x91}
	for range 2 {
		if _, err := r.conn.HandleInbound(context.Background(), hw.Inbound{Modem: "m1", PDU: raw, Slot: 1}); err != nil {
			t.Fatal(err)
		}
	}
	inbox, _ := r.router.Inbox(context.Background(), 10)
	if len(inbox) != 1 {
		t.Fatalf("%d messages, want one", len(inbox))
	}
	m := inbox[0]
	if m.State != store.Undecodable || m.DataHex != strings.ToUpper(hex.EncodeToString(raw)) || m.Detail == "" {
		t.Errorf("kept as %+v", m)
	}
	// It is routed like any message, as data, so a human or tool sees it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.app.mu.Lock()
		n := len(r.app.got)
		got := r.app.got
		r.app.mu.Unlock()
		if n == 1 && string(got[0].Data) == string(raw) {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("app got %d messages: %+v", n, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
