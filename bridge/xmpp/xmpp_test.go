package xmpp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/bridge/xmpp/xmpptest"
	"github.com/outpost-sms/outpost/store"
)

// fakeSMS is the SMS side: it takes every SMS (delivered at once unless
// hold is set) and records them.
type fakeSMS struct {
	mu   sync.Mutex
	sent []string // "<number> <text>"
	hold bool
}

func (f *fakeSMS) Name() string                                    { return "sms" }
func (f *fakeSMS) Scheme() string                                  { return bridge.SchemeTel }
func (f *fakeSMS) Run(ctx context.Context, _ *bridge.Router) error { <-ctx.Done(); return nil }
func (f *fakeSMS) Deliver(ctx context.Context, m store.Message, d store.Delivery) (bridge.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hold {
		return bridge.Outcome{}, bridge.Outage(fmt.Errorf("no modem ready"))
	}
	text := ""
	if m.Text != nil {
		text = *m.Text
	}
	f.sent = append(f.sent, d.Recipient+" "+text)
	return bridge.Outcome{State: store.Delivered, Detail: "fake"}, nil
}

func (f *fakeSMS) texts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sent...)
}

// env is the connector logged in to a real Prosody, in front of a router
// on a SQLite file with the fake SMS side.
type env struct {
	p      *xmpptest.Prosody
	st     *store.Store
	router *bridge.Router
	sms    *fakeSMS
	c      *Connector
	cancel context.CancelFunc
	done   chan struct{}
}

var accounts = map[string]string{"outpost": "op-pw", "alice": "alice-pw", "bob": "bob-pw", "eve": "eve-pw"}

func newEnv(t *testing.T, p *xmpptest.Prosody, tweak func(*Options)) *env {
	t.Helper()
	if p == nil {
		p = xmpptest.StartProsody(t, "outpost.test", accounts)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := bridge.New(st, nil)
	r.RetryMin, r.RetryMax = 10*time.Millisecond, 100*time.Millisecond
	sms := &fakeSMS{}
	r.Add(sms)
	opt := Options{JID: p.JID("outpost"), Password: "op-pw", Server: p.Addr(), CAFile: p.CAFile,
		Users:        []User{{JID: p.JID("alice"), Role: RoleUser}, {JID: p.JID("bob"), Role: RoleAdmin}},
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
		Parts:       func(_, text string) (int, error) { return (len(text) + 152) / 153, nil },
		ModemsReady: func() (int, int) { return 1, 1 }, Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if tweak != nil {
		tweak(&opt)
	}
	c, err := New(opt, r)
	if err != nil {
		t.Fatal(err)
	}
	r.Add(c)
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{p: p, st: st, router: r, sms: sms, c: c, cancel: cancel, done: make(chan struct{})}
	go func() { r.Run(ctx); close(e.done) }()
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	e.cancel()
	<-e.done
}

// up waits until the connector is logged in.
func (e *env) up(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.c.WaitReady(ctx); err != nil {
		t.Fatalf("the connector did not log in: %v\n%s", err, e.p.LogTail())
	}
}

// inbound stores an SMS from a phone as the SMS connector would.
func (e *env) inbound(t *testing.T, from, text string) string {
	t.Helper()
	m := &store.Message{Channel: "sms", Source: "sms", Peer: from, FromAddr: "tel:" + from, Text: &text, Modem: "m1"}
	if err := e.st.Update(context.Background(), func(tx *store.Tx) error { return e.router.StoreInbound(tx, m, "test") }); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

const wait = 15 * time.Second

func body(from, sub string) func(xmpptest.Event) bool {
	return func(ev xmpptest.Event) bool {
		return ev.Kind == "message" && xmpptest.SameJID(ev.From, from) && strings.Contains(ev.Body, sub)
	}
}

// queuedID is the id in an answer "queued <id>".
func queuedID(t *testing.T, ev xmpptest.Event) string {
	t.Helper()
	f := strings.Fields(ev.Body)
	if len(f) < 2 || f[0] != "queued" {
		t.Fatalf("want \"queued <id>\", got %q", ev.Body)
	}
	return f[1]
}

// TestChatToSMSAndBack: a user's chat to a number is an SMS (queued <id>,
// then its receipt when delivered); the phone's answer comes back naming
// the number and the contact; ". text" answers it; a contact's name
// works as the address.
func TestChatToSMSAndBack(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.up(t)
	out := e.p.JID("outpost")
	alice := xmpptest.Connect(t, e.p, "alice", "alice-pw")

	began := time.Now()
	stanza := alice.Send(out, "+15555550100 hi there", xmpptest.RequestReceipt())
	id := queuedID(t, alice.Expect(wait, body(out, "queued ")))
	queued := time.Since(began)
	rc := alice.Expect(wait, func(ev xmpptest.Event) bool { return ev.Kind == "receipt" })
	// The common case, one user and one chat, through a real server and
	// client (the figure includes slixmpp's own latency).
	t.Logf("a chat answered \"queued\" after %s, its receipt (SMS delivered at once) after %s", queued.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	if rc.ReceiptFor != stanza {
		t.Errorf("receipt for %q, want the chat's id %q", rc.ReceiptFor, stanza)
	}
	if got := e.sms.texts(); len(got) != 1 || got[0] != "+15555550100 hi there" {
		t.Fatalf("SMS sent: %q", got)
	}
	v, err := e.router.Message(context.Background(), id)
	if err != nil || v.Channel != "xmpp" || v.FromAddr != "xmpp:"+e.p.JID("alice") {
		t.Fatalf("message %s: %+v %v", id, v.Message, err)
	}

	if _, err := e.router.AddContact(context.Background(), bridge.ContactInput{Name: ptr("Mary Jane"), Phones: &[]string{"+15555550100"}}); err != nil {
		t.Fatal(err)
	}
	e.inbound(t, "+15555550100", "hello back")
	alice.Expect(wait, body(out, "+15555550100 (Mary Jane): hello back"))

	alice.Send(out, ". again")
	id2 := queuedID(t, alice.Expect(wait, body(out, "queued ")))
	alice.Expect(wait, body(out, "delivered: "+id2+" to +15555550100"))

	alice.Send(out, "mary jane by name")
	queuedID(t, alice.Expect(wait, body(out, "queued ")))
	waitFor(t, "the SMS to the contact", func() bool {
		got := e.sms.texts()
		return len(got) == 3 && got[2] == "+15555550100 by name"
	})
}

// TestGroupSummary: a send to more than maxNoticeLines numbers is told
// of in one summary once every number has its outcome, not a line each.
func TestGroupSummary(t *testing.T) {
	e := newEnv(t, nil, nil)
	var big []string
	for i := range 12 {
		big = append(big, fmt.Sprintf("+1555555%04d", i))
	}
	e.router.Groups = map[string][]string{"big": big, "small": big[:2]}
	e.up(t)
	out := e.p.JID("outpost")
	alice := xmpptest.Connect(t, e.p, "alice", "alice-pw")
	alice.Send(out, "group:big hello all")
	id := queuedID(t, alice.Expect(wait, body(out, "queued ")))
	alice.Expect(wait, body(out, id+" to 12 numbers: 12 delivered"))
	alice.Send(out, "group:small hello two")
	id2 := queuedID(t, alice.Expect(wait, body(out, "queued ")))
	alice.Expect(wait, body(out, "delivered: "+id2+" to "+big[0]))
	alice.Expect(wait, body(out, "delivered: "+id2+" to "+big[1]))
	alice.ExpectNone(time.Second, body(out, "delivered: "+id))
}

// TestStrangersAndRoles: a stranger gets one polite refusal and is then
// ignored; a user without the admin role cannot ban; every unknown
// command gets the help text.
func TestStrangersAndRoles(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.up(t)
	out := e.p.JID("outpost")
	eve := xmpptest.Connect(t, e.p, "eve", "eve-pw")
	eve.Send(out, "+15555550100 let me in")
	eve.Expect(wait, body(out, "only"))
	eve.Send(out, "status")
	eve.ExpectNone(2*time.Second, func(ev xmpptest.Event) bool { return ev.Kind == "message" })
	if got := e.sms.texts(); len(got) != 0 {
		t.Errorf("a stranger's chat was sent: %q", got)
	}

	alice := xmpptest.Connect(t, e.p, "alice", "alice-pw")
	alice.Send(out, "ban +15555550199")
	alice.Expect(wait, body(out, `"ban" is for admins`))
	alice.Send(out, "what is this")
	alice.Expect(wait, body(out, "I did not understand that."))
	var bans []store.Ban
	e.st.View(context.Background(), func(tx *store.Tx) (err error) { bans, err = tx.Bans(); return })
	if len(bans) != 0 {
		t.Errorf("a user banned: %+v", bans)
	}

	bob := xmpptest.Connect(t, e.p, "bob", "bob-pw")
	bob.Send(out, "ban +15555550199 spam")
	bob.Expect(wait, body(out, "ban: done for +15555550199"))
	bob.Send(out, "audit")
	bob.Expect(wait, body(out, "xmpp:"+e.p.JID("bob")+" (xmpp) ban tel:+15555550199 spam"))
	bob.Send(out, "frobnicate")
	bob.Expect(wait, body(out, "Admin:"))
}

// TestLongTextAsks: a text over max_parts is sent only after "yes".
func TestLongTextAsks(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.up(t)
	out := e.p.JID("outpost")
	alice := xmpptest.Connect(t, e.p, "alice", "alice-pw")
	long := strings.Repeat("word ", 100)
	alice.Send(out, "+15555550100 "+long)
	alice.Expect(wait, body(out, "takes 4 SMS parts"))
	if got := e.sms.texts(); len(got) != 0 {
		t.Fatalf("sent before the yes: %q", got)
	}
	alice.Send(out, "yes")
	queuedID(t, alice.Expect(wait, body(out, "queued ")))
	waitFor(t, "the long SMS", func() bool { return len(e.sms.texts()) == 1 })
	alice.Send(out, "yes")
	alice.Expect(wait, body(out, "Nothing is waiting"))
}

// TestOutageKeepsOrder: SMS routed to a user while the server is down
// all arrive after it is back, in the order they came, none lost, and
// none of their attempts used up.
func TestOutageKeepsOrder(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.up(t)
	out := e.p.JID("outpost")
	alice := xmpptest.Connect(t, e.p, "alice", "alice-pw")
	alice.Send(out, "+15555550100 start")
	queuedID(t, alice.Expect(wait, body(out, "queued ")))

	e.p.Stop()
	var ids []string
	for i := range 10 {
		ids = append(ids, e.inbound(t, "+15555550100", fmt.Sprintf("during the outage %d", i)))
	}
	time.Sleep(2 * time.Second) // several reconnect attempts
	e.p.Start()
	alice.Reconnect()
	for i := range 10 {
		alice.Expect(wait, body(out, fmt.Sprintf("during the outage %d", i)))
	}
	var msgs []string
	for _, ev := range alice.Events() {
		if ev.Kind == "message" && strings.Contains(ev.Body, "during the outage") {
			msgs = append(msgs, ev.Body)
		}
	}
	for i, m := range msgs {
		if !strings.HasSuffix(m, fmt.Sprintf("during the outage %d", i)) {
			t.Fatalf("out of order or repeated: %q", msgs)
		}
	}
	for _, id := range ids {
		// The chat can reach alice before the ping behind it is
		// answered and the delivery committed.
		var v bridge.MessageView
		waitFor(t, id+" delivered", func() bool {
			v, _ = e.router.Message(context.Background(), id)
			for _, d := range v.Deliveries {
				if d.Connector == "xmpp" && (d.State == store.Queued || d.State == store.Sending) {
					return false
				}
			}
			return true
		})
		for _, d := range v.Deliveries {
			if d.Connector == "xmpp" && (d.State != store.Delivered || d.Attempts > 1) {
				t.Errorf("%s to %s: %s after %d attempts", id, d.Recipient, d.State, d.Attempts)
			}
		}
	}
}

// cutter is a TCP proxy in front of the server whose connections the test
// cuts at will.
type cutter struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
	n     int // connections accepted
}

func newCutter(t *testing.T, to string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, to: to}
	t.Cleanup(func() { ln.Close(); c.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", to)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, up)
			c.n++
			c.mu.Unlock()
			go func() { io.Copy(up, in); up.Close() }()
			go func() { io.Copy(in, up); in.Close() }()
		}
	}()
	return c
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

func (c *cutter) accepted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestReconnects: 100 lost connections, each dialled again within the
// backoff cap, leave no goroutine or memory behind (measured); a server
// restart is survived the same way.
func TestReconnects(t *testing.T) {
	p := xmpptest.StartProsody(t, "outpost.test", accounts)
	cut := newCutter(t, p.Addr())
	e := newEnv(t, p, func(o *Options) {
		o.Server = cut.ln.Addr().String()
		o.ReconnectMin, o.ReconnectMax = 5*time.Millisecond, 20*time.Millisecond
	})
	e.up(t)
	settle := func() (int, uint64) {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
			time.Sleep(50 * time.Millisecond)
		}
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapInuse
	}
	g0, h0 := settle()
	start := time.Now()
	for i := range 100 {
		n := cut.accepted()
		cut.cut()
		waitFor(t, fmt.Sprintf("reconnect %d", i+1), func() bool { return cut.accepted() > n && e.c.current() != nil })
	}
	took := time.Since(start)
	g1, h1 := settle()
	t.Logf("100 reconnects in %s (%.0f ms each); goroutines %d → %d; heap in use %d KiB → %d KiB", took.Round(time.Millisecond),
		float64(took.Milliseconds())/100, g0, g1, h0>>10, h1>>10)
	if g1 > g0+2 {
		t.Errorf("goroutines grew from %d to %d over 100 reconnects", g0, g1)
	}
	if h1 > h0+2<<20 {
		t.Errorf("heap in use grew from %d KiB to %d KiB over 100 reconnects", h0>>10, h1>>10)
	}

	// A server restart: back within the cap (20ms) once it listens.
	p.Stop()
	waitFor(t, "the connection lost", func() bool { return e.c.current() == nil })
	p.Start()
	back := time.Now()
	e.up(t)
	t.Logf("logged in again %s after the server was back", time.Since(back).Round(time.Millisecond))
	alice := xmpptest.Connect(t, p, "alice", "alice-pw")
	alice.Send(p.JID("outpost"), "+15555550100 after the restart")
	queuedID(t, alice.Expect(wait, body(p.JID("outpost"), "queued ")))
}

// TestPresenceAndRoster: users see Outpost's presence with the modems'
// state, away when none is ready; a user's subscription request is
// accepted, a stranger's ignored.
func TestPresenceAndRoster(t *testing.T) {
	var mu sync.Mutex
	ready := 1
	e := newEnv(t, nil, func(o *Options) {
		o.ModemsReady = func() (int, int) { mu.Lock(); defer mu.Unlock(); return ready, 1 }
	})
	out := e.p.JID("outpost")
	alice := xmpptest.Connect(t, e.p, "alice", "alice-pw")
	alice.AutoApprove(true)
	e.up(t)
	alice.Subscribe(out)
	alice.Expect(wait, func(ev xmpptest.Event) bool { return ev.Kind == "subscribed" && xmpptest.SameJID(ev.From, out) })
	alice.Expect(wait, func(ev xmpptest.Event) bool {
		return ev.Kind == "presence" && xmpptest.SameJID(ev.From, out) && ev.Status == "1 modem ready, 0 queued" && ev.Show == ""
	})
	mu.Lock()
	ready = 0
	mu.Unlock()
	e.c.presenceChanged()
	alice.Expect(wait, func(ev xmpptest.Event) bool {
		return ev.Kind == "presence" && xmpptest.SameJID(ev.From, out) && ev.Show == "away" && ev.Status == "0 modems ready, 0 queued"
	})

	eve := xmpptest.Connect(t, e.p, "eve", "eve-pw")
	eve.Subscribe(out)
	eve.ExpectNone(2*time.Second, func(ev xmpptest.Event) bool { return ev.Kind == "subscribed" })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

// testWriter logs through t.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestChatSendsOnlySMS: a user cannot slip another scheme in after a
// comma to make Outpost chat (or mail) someone in its own name.
func TestChatSendsOnlySMS(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.up(t)
	out := e.p.JID("outpost")
	alice := xmpptest.Connect(t, e.p, "alice", "alice-pw")
	eve := xmpptest.Connect(t, e.p, "eve", "eve-pw")
	alice.Send(out, "+15555550100,xmpp:"+e.p.JID("eve")+" spam in Outpost's name")
	alice.Expect(wait, body(out, `Not sent: "xmpp:`+e.p.JID("eve")+`" is not a phone number`))
	eve.ExpectNone(2*time.Second, func(ev xmpptest.Event) bool { return ev.Kind == "message" })
	if got := e.sms.texts(); len(got) != 0 {
		t.Errorf("SMS sent: %q", got)
	}
	alice.Send(out, "+15555550100,+15555550101 both")
	queuedID(t, alice.Expect(wait, body(out, "queued ")))
	waitFor(t, "two SMS", func() bool { return len(e.sms.texts()) == 2 })
}

// TestFloods: a stranger's flood gets one refusal and does not crowd out
// a user, whose own burst of 300 chats is answered in whole, in order.
func TestFloods(t *testing.T) {
	e := newEnv(t, nil, func(o *Options) { o.Log = nil })
	e.up(t)
	out := e.p.JID("outpost")
	eve := xmpptest.Connect(t, e.p, "eve", "eve-pw")
	alice := xmpptest.Connect(t, e.p, "alice", "alice-pw")
	for i := range 500 {
		eve.Send(out, fmt.Sprintf("spam %d", i))
	}
	alice.Send(out, "+15555550100 during the flood")
	queuedID(t, alice.Expect(wait, body(out, "")))
	eve.Sync()
	alice.Send(out, "help")
	alice.Expect(wait, body(out, "Send an SMS"))
	n := 0
	for _, ev := range eve.Events() {
		if ev.Kind == "message" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the stranger got %d answers to 500 chats, want 1", n)
	}

	const burst = 300
	for i := range burst {
		alice.Send(out, fmt.Sprintf("+15555550100 n%d", i))
	}
	// Each SMS stores a notice to deliver too: slow under -race.
	for deadline := time.Now().Add(2 * time.Minute); len(e.sms.texts()) < 1+burst; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d SMS of %d after 2 minutes", len(e.sms.texts()), 1+burst)
		}
	}
	var answers []string
	for _, ev := range alice.Events() {
		if ev.Kind == "message" && (strings.HasPrefix(ev.Body, "queued") || strings.HasPrefix(ev.Body, "Busy")) {
			answers = append(answers, ev.Body)
		}
	}
	if len(answers) != 1+burst || strings.Contains(strings.Join(answers, "\n"), "Busy") {
		t.Errorf("%d answers to %d chats: %q", len(answers), 1+burst, answers)
	}
	for i, s := range e.sms.texts()[1:] {
		if want := fmt.Sprintf("+15555550100 n%d", i); s != want {
			t.Fatalf("SMS %d is %q, want %q", i, s, want)
		}
	}
}

// TestKickedBacksOff: two connectors on one account kick each other out
// (a stream conflict) right after each login; the backoff still grows to
// its cap instead of starting over at every login.
func TestKickedBacksOff(t *testing.T) {
	p := xmpptest.StartProsody(t, "outpost.test", accounts)
	cut := newCutter(t, p.Addr())
	e1 := newEnv(t, p, func(o *Options) { o.Log = nil })
	e1.up(t)
	e2 := newEnv(t, p, func(o *Options) { o.Server = cut.ln.Addr().String(); o.Log = nil })
	e2.up(t)
	n := cut.accepted()
	time.Sleep(5 * time.Second)
	// 50, 100, 200, 400 ms, then 500 ms: about 12 in 5 s.
	if got := cut.accepted() - n; got > 14 {
		t.Errorf("%d connections in 5 s with reconnect_max 500ms", got)
	}
}

// TestSilentServer: a server that accepts and never answers holds one
// login, not one per attempt (each would keep a socket and a goroutine
// for as long as the server does); the status says why; once that
// connection closes, Outpost dials again.
func TestSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	p := xmpptest.StartProsody(t, "outpost.test", accounts)
	e := newEnv(t, p, func(o *Options) {
		o.Server = ln.Addr().String()
		o.LoginTimeout = 200 * time.Millisecond
		o.ReconnectMin, o.ReconnectMax = 20*time.Millisecond, 50*time.Millisecond
	})
	first := <-accepted
	time.Sleep(2 * time.Second)
	if n := len(accepted); n != 0 {
		t.Errorf("%d more connections to a server that never answered the first", n)
	}
	st, _ := e.router.Links()["xmpp"].(map[string]any)
	if st["state"] != "down" || !strings.Contains(fmt.Sprint(st["error"]), "no answer to the login") {
		t.Errorf("status %v", st)
	}
	first.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(wait):
		t.Fatal("no new attempt after the silent connection closed")
	}
}

// TestRouteInAnyCase: a route to a user, written in another case than
// the JID the user chats from, does not make the phone's answer arrive
// twice (once for the route, once for the conversation).
func TestRouteInAnyCase(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.router.Routes = []string{"xmpp:Alice@Outpost.test"}
	e.up(t)
	out := e.p.JID("outpost")
	alice := xmpptest.Connect(t, e.p, "alice", "alice-pw")
	alice.Send(out, "+15555550100 hi")
	queuedID(t, alice.Expect(wait, body(out, "queued ")))
	id := e.inbound(t, "+15555550100", "answer once")
	alice.Expect(wait, body(out, "answer once"))
	alice.ExpectNone(2*time.Second, body(out, "answer once"))
	v, _ := e.router.Message(context.Background(), id)
	for _, d := range v.Deliveries {
		if d.Connector == "xmpp" && d.Recipient != "alice@outpost.test" {
			t.Errorf("delivery to %q, want alice@outpost.test", d.Recipient)
		}
	}
}

// TestLongAnswerIsCut: an answer longer than a server takes in one
// stanza (audit --json of thousands of entries) is cut, saying so,
// instead of making the server end Outpost's stream.
func TestLongAnswerIsCut(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := context.Background()
	for i := range 2000 {
		if _, err := e.router.Bans(ctx, "ban", fmt.Appendf(nil, `{"addr": "+1555%07d", "reason": "a reason long enough to fill the audit log faster"}`, i), "test", "test"); err != nil {
			t.Fatal(err)
		}
	}
	e.up(t)
	sess := e.c.current()
	out := e.p.JID("outpost")
	bob := xmpptest.Connect(t, e.p, "bob", "bob-pw")
	bob.Send(out, "audit --json")
	ev := bob.Expect(wait, body(out, "… cut here: the answer has "))
	if len(ev.Body) > maxAnswer+200 || !strings.HasPrefix(ev.Body, "{") {
		t.Errorf("answer of %d bytes: %.100q", len(ev.Body), ev.Body)
	}
	bob.Send(out, "queue")
	bob.Expect(wait, body(out, "Nothing is queued."))
	if e.c.current() != sess {
		t.Error("the connection was lost and made again")
	}
}

// TestStanzasGoXMPPFailsOn: stanzas anyone can send that go-xmpp's Recv
// fails on (an avatar notice without items, or with an empty item) are
// skipped; they used to end Outpost's connection ("read: EOF"), one
// stanza each time it was back.
func TestStanzasGoXMPPFailsOn(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.up(t)
	sess := e.c.current()
	out := e.p.JID("outpost")
	eve := xmpptest.Connect(t, e.p, "eve", "eve-pw")
	for _, items := range []string{"", "<item id='a'></item>"} {
		eve.SendRaw(fmt.Sprintf(`<message to='%s/outpost'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:avatar:metadata'>%s</items></event></message>`, out, items))
	}
	eve.Sync()
	alice := xmpptest.Connect(t, e.p, "alice", "alice-pw")
	alice.Send(out, "help")
	alice.Expect(wait, body(out, "Send an SMS"))
	if e.c.current() != sess {
		t.Error("the connection was lost and made again")
	}
}

// lockedBuffer is a log any goroutine may write.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestForgedRoster: a roster result or push from anyone but Outpost's own
// server is not taken for its roster (RFC 6121 2.1.6).
func TestForgedRoster(t *testing.T) {
	var logs lockedBuffer
	e := newEnv(t, nil, func(o *Options) { o.Log = slog.New(slog.NewTextHandler(&logs, nil)) })
	e.up(t)
	out := e.p.JID("outpost")
	eve := xmpptest.Connect(t, e.p, "eve", "eve-pw")
	item := "<query xmlns='jabber:iq:roster'><item jid='mallory@outpost.test' subscription='both'/></query>"
	eve.SendRaw(fmt.Sprintf("<iq to='%s/outpost' type='result' id='roster-1'>%s</iq>", out, item))
	eve.SendRaw(fmt.Sprintf("<iq to='%s/outpost' type='set' id='push-1'>%s</iq>", out, item))
	eve.Sync()
	alice := xmpptest.Connect(t, e.p, "alice", "alice-pw")
	alice.Send(out, "help")
	alice.Expect(wait, body(out, "Send an SMS"))
	if strings.Contains(logs.String(), "mallory") {
		t.Errorf("a stranger's roster was taken for Outpost's:\n%s", logs.String())
	}
}

// TestBounceFails: a chat message to an account the server does not have
// comes back as an error before the ping behind it is answered: the
// delivery fails (permanent, with the reason) instead of counting as
// delivered; the user's own messages behind it are not held up.
func TestBounceFails(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.router.Rules = []bridge.Route{{From: "+15555550100", To: []string{"xmpp:nobody@outpost.test", "xmpp:alice@outpost.test"}}}
	e.up(t)
	alice := xmpptest.Connect(t, e.p, "alice", "alice-pw")
	id := e.inbound(t, "+15555550100", "to nobody")
	alice.Expect(wait, body(e.p.JID("outpost"), "+15555550100: to nobody"))
	waitFor(t, "the bounce to fail the delivery", func() bool {
		v, _ := e.router.Message(context.Background(), id)
		for _, d := range v.Deliveries {
			if d.Recipient == "nobody@outpost.test" {
				return d.State == store.Failed && strings.Contains(d.LastError, "sent the message to nobody@outpost.test back")
			}
		}
		return false
	})
	v, _ := e.router.Message(context.Background(), id)
	for _, d := range v.Deliveries {
		if d.Recipient == "nobody@outpost.test" {
			t.Logf("bounced: %s", d.LastError)
		}
	}
}
