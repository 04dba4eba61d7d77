package xmpptest

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

//go:embed driver.py
var driverPy []byte

// python is Debian's interpreter, whose dist-packages hold python3-slixmpp;
// another python3 on PATH (a virtualenv, /usr/local) would not have it.
const python = "/usr/bin/python3"

var (
	slixmppOnce sync.Once
	slixmppErr  error
)

func needSlixmpp(t testing.TB) {
	t.Helper()
	slixmppOnce.Do(func() {
		if out, err := exec.Command(python, "-c", "import slixmpp").CombinedOutput(); err != nil {
			slixmppErr = fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		}
	})
	if slixmppErr != nil {
		t.Logf("%s -c 'import slixmpp': %v", python, slixmppErr)
		toolMissing(t, "python3-slixmpp")
	}
}

// Event is a stanza the client received, or a change of its connection.
type Event struct {
	// Kind is one of:
	//   "connected"     logged in, initial presence sent and roster fetched; From is the full JID bound
	//   "message"       a message with no receipt in it (Body may be empty)
	//   "receipt"       a message carrying a XEP-0184 <received/>; ReceiptFor is the id it names
	//   "presence"      available (Type "") or Type "unavailable"/"probe"; Show, Status
	//   "subscribe", "subscribed", "unsubscribe", "unsubscribed"
	//   "error"         a message or presence of type error (Error is its condition,
	//                   Status its text, ID the id of the stanza that failed),
	//                   a stream error (Type "stream"), or a command the
	//                   client could not carry out (Type "client")
	//   "disconnected"  the stream ended; Body says why
	Kind string
	// From is the sender's JID as the stanza had it (full JID when it
	// came from a client's resource).
	From string
	Body string
	// ID is the stanza's id attribute.
	ID         string
	ReceiptFor string `json:"receipt_for"`
	// ReceiptRequest is set when a message asked for a XEP-0184 receipt.
	ReceiptRequest bool `json:"receipt_request"`
	// Type is the stanza's type attribute as sent ("" when absent).
	Type   string
	Show   string
	Status string
	Error  string
	// XML is the whole stanza, for what the other fields do not carry.
	XML string
}

func (e Event) String() string {
	s := e.Kind
	for _, f := range []struct{ k, v string }{
		{"from", e.From}, {"id", e.ID}, {"type", e.Type}, {"body", e.Body}, {"receipt-for", e.ReceiptFor},
		{"show", e.Show}, {"status", e.Status}, {"error", e.Error},
	} {
		if f.v != "" {
			s += fmt.Sprintf(" %s=%q", f.k, f.v)
		}
	}
	if e.ReceiptRequest {
		s += " receipt-request"
	}
	return s
}

// wire is an event line of the driver, which also carries command
// acknowledgements and login failures that tests do not see as events.
type wire struct {
	Event
	N int `json:"n"`
}

// Client is an XMPP client (slixmpp) logged in to a Prosody. Its methods
// must be called from the test's goroutine: they fail the test.
type Client struct {
	// JID is the bare JID the client logs in as.
	JID string

	t        testing.TB
	p        *Prosody
	password string
	script   string

	mu       sync.Mutex
	events   []Event
	consumed []bool
	changed  chan struct{} // closed and replaced on every new event
	stderr   bytes.Buffer
	acks     map[int]chan string
	full     string

	stdin  io.WriteCloser
	cmd    *exec.Cmd
	exited chan struct{}
	n      atomic.Int64
	closed bool
}

// Connect logs user in to p over STARTTLS, verifying the server's
// certificate against p.CAFile, and fails the test if it cannot. The
// client logs out when the test ends.
func Connect(t testing.TB, p *Prosody, user, password string) *Client {
	t.Helper()
	c, err := Dial(t, p, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Dial is Connect that returns the reason a login failed instead of
// failing the test, for tests of failed logins.
func Dial(t testing.TB, p *Prosody, user, password string) (*Client, error) {
	t.Helper()
	needSlixmpp(t)
	script := filepath.Join(t.TempDir(), "driver.py")
	if err := os.WriteFile(script, driverPy, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Client{
		JID:      p.JID(user),
		t:        t,
		p:        p,
		password: password,
		script:   script,
		changed:  make(chan struct{}),
		acks:     map[int]chan string{},
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("xmpptest client %s:\n%s", c.JID, c.report())
		}
		c.Close()
	})
	if err := c.login1(); err != nil {
		return nil, err
	}
	return c, nil
}

// resources numbers the logins of the test binary, so that two clients of
// one account, or a login again, never take over another's resource.
var resources atomic.Int64

// login1 starts a driver process and waits for it to log in.
func (c *Client) login1() error {
	cmd := exec.Command(python, c.script, c.JID, c.password, "127.0.0.1", portOf(c.p.addr), c.p.CAFile,
		fmt.Sprintf("xmpptest-%d", resources.Add(1)))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = lockedWriter{&c.mu, &c.stderr}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("xmpptest: starting %s: %w", python, err)
	}
	login := make(chan string, 1)
	exited := make(chan struct{})
	c.mu.Lock()
	c.cmd, c.stdin, c.exited, c.closed = cmd, stdin, exited, false
	c.mu.Unlock()
	go c.read(stdout, cmd, login, exited)

	select {
	case got := <-login:
		if jid, ok := strings.CutPrefix(got, "ok "); ok {
			c.mu.Lock()
			c.full = jid
			c.mu.Unlock()
			return nil
		}
		<-exited
		return fmt.Errorf("xmpptest: %s cannot log in to %s: %s", c.JID, c.p.addr, got)
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("xmpptest: %s did not log in to %s within 15s\n%s", c.JID, c.p.addr, c.report())
	}
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// read takes the driver's lines until it exits; a driver that dies
// without saying so still leaves a "disconnected" (or a failed login).
func (c *Client) read(stdout io.Reader, cmd *exec.Cmd, login chan<- string, exited chan<- struct{}) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	loggedIn, ended := false, false
	for sc.Scan() {
		var w wire
		if err := json.Unmarshal(sc.Bytes(), &w); err != nil {
			c.mu.Lock()
			fmt.Fprintf(&c.stderr, "xmpptest: bad driver line %q: %v\n", sc.Bytes(), err)
			c.mu.Unlock()
			continue
		}
		switch w.Kind {
		case "ack":
			c.mu.Lock()
			if ch := c.acks[w.N]; ch != nil {
				ch <- w.Error
				delete(c.acks, w.N)
			}
			c.mu.Unlock()
			continue
		case "failed":
			notify(login, w.Error)
			continue
		case "connected":
			loggedIn = true
			notify(login, "ok "+w.From)
		case "disconnected":
			ended = true
		}
		c.add(w.Event)
	}
	err := cmd.Wait()
	if !loggedIn {
		notify(login, fmt.Sprintf("driver exited (%v)", err))
	} else if !ended {
		c.add(Event{Kind: "disconnected", Body: fmt.Sprintf("driver exited (%v)", err)})
	}
	c.mu.Lock()
	for n, ch := range c.acks {
		ch <- "driver exited"
		delete(c.acks, n)
	}
	c.mu.Unlock()
	close(exited)
}

// notify tells the waiting login the first outcome; the driver may
// report a failure more than once, and nobody reads the later ones.
func notify(login chan<- string, s string) {
	select {
	case login <- s:
	default:
	}
}

func (c *Client) add(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
	c.consumed = append(c.consumed, false)
	close(c.changed)
	c.changed = make(chan struct{})
}

// FullJID is the JID with resource that the last login bound.
func (c *Client) FullJID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.full
}

// Events is every event so far, consumed by Expect or not, oldest first.
func (c *Client) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// Expect waits for the first event that no Expect has taken yet and that
// pred accepts, takes it and returns it. Events before it that pred
// rejects stay for later Expects. The test fails, showing everything
// received, if none comes within timeout.
func (c *Client) Expect(timeout time.Duration, pred func(Event) bool) Event {
	c.t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		c.mu.Lock()
		for i := seen; i < len(c.events); i++ {
			if !c.consumed[i] && pred(c.events[i]) {
				c.consumed[i] = true
				e := c.events[i]
				c.mu.Unlock()
				return e
			}
		}
		seen = len(c.events)
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			c.t.Fatalf("xmpptest: %s: no expected event within %v\n%s", c.JID, timeout, c.report())
			return Event{}
		}
	}
}

// ExpectNone fails the test if an event that no Expect has taken and that
// pred accepts is there now or arrives within d.
func (c *Client) ExpectNone(d time.Duration, pred func(Event) bool) {
	c.t.Helper()
	deadline := time.After(d)
	seen := 0
	for {
		c.mu.Lock()
		for i := seen; i < len(c.events); i++ {
			if !c.consumed[i] && pred(c.events[i]) {
				e := c.events[i]
				c.mu.Unlock()
				c.t.Fatalf("xmpptest: %s: unexpected event %v\n%s", c.JID, e, c.report())
				return
			}
		}
		seen = len(c.events)
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			return
		}
	}
}

// ExpectBody waits for a "message" whose body contains substring and
// whose sender is from: a bare JID matches any of its resources.
func (c *Client) ExpectBody(timeout time.Duration, from, substring string) Event {
	c.t.Helper()
	return c.Expect(timeout, func(e Event) bool {
		return e.Kind == "message" && SameJID(e.From, from) && strings.Contains(e.Body, substring)
	})
}

// SameJID reports whether JID got is want, or when want is bare, whether
// got is want or one of its resources. Domains and local parts compare
// without case, as XMPP's nodeprep and nameprep fold them for ASCII.
func SameJID(got, want string) bool {
	if strings.Contains(want, "/") {
		gb, gr, _ := strings.Cut(got, "/")
		wb, wr, _ := strings.Cut(want, "/")
		return strings.EqualFold(gb, wb) && gr == wr
	}
	bare, _, _ := strings.Cut(got, "/")
	return strings.EqualFold(bare, want)
}

func (c *Client) report() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "events received by %s (* = taken by Expect):\n", c.JID)
	for i, e := range c.events {
		mark := " "
		if c.consumed[i] {
			mark = "*"
		}
		fmt.Fprintf(&b, " %s %v\n", mark, e)
	}
	if c.stderr.Len() > 0 {
		fmt.Fprintf(&b, "driver stderr:\n%s\n", tail(c.stderr.Bytes(), 40))
	}
	return b.String()
}

// command sends c to the driver and waits until it has been carried out
// (the stanza handed to the connection), failing the test otherwise.
func (c *Client) command(cmd map[string]any) {
	c.t.Helper()
	n := int(c.n.Add(1))
	cmd["n"] = n
	line, err := json.Marshal(cmd)
	if err != nil {
		c.t.Fatal(err)
	}
	ack := make(chan string, 1)
	c.mu.Lock()
	stdin, exited := c.stdin, c.exited
	c.acks[n] = ack
	c.mu.Unlock()
	select {
	case <-exited:
		c.t.Fatalf("xmpptest: %s: %s: the client is not connected\n%s", c.JID, cmd["cmd"], c.report())
	default:
	}
	if _, err := stdin.Write(append(line, '\n')); err != nil {
		c.t.Fatalf("xmpptest: %s: %s: %v\n%s", c.JID, cmd["cmd"], err, c.report())
	}
	select {
	case msg := <-ack:
		if msg != "" {
			c.t.Fatalf("xmpptest: %s: %s\n%s", c.JID, msg, c.report())
		}
	case <-time.After(10 * time.Second):
		c.t.Fatalf("xmpptest: %s: %s: no answer from the driver within 10s\n%s", c.JID, cmd["cmd"], c.report())
	}
}

// SendOpt changes a message Send makes.
type SendOpt func(*sendOptions)

type sendOptions struct {
	receipt bool
	typ, id string
}

// RequestReceipt asks the recipient for a XEP-0184 receipt.
func RequestReceipt() SendOpt { return func(o *sendOptions) { o.receipt = true } }

// Type sets the message's type in place of "chat" ("" sends none, a
// normal message).
func Type(typ string) SendOpt { return func(o *sendOptions) { o.typ = typ } }

// ID sets the stanza id in place of a fresh one.
func ID(id string) SendOpt { return func(o *sendOptions) { o.id = id } }

var ids atomic.Int64

func newID() string { return fmt.Sprintf("xt%d-%d", os.Getpid(), ids.Add(1)) }

// Send sends a chat message to and returns its stanza id.
func (c *Client) Send(to, body string, opts ...SendOpt) string {
	c.t.Helper()
	o := sendOptions{typ: "chat", id: newID()}
	for _, f := range opts {
		f(&o)
	}
	c.command(map[string]any{"cmd": "send", "to": to, "body": body, "type": o.typ, "id": o.id, "receipt": o.receipt})
	return o.id
}

// SendReceipt acknowledges the message id from to with a XEP-0184
// <received/>, which the client never sends by itself.
func (c *Client) SendReceipt(to, id string) {
	c.t.Helper()
	c.command(map[string]any{"cmd": "receipt", "to": to, "for": id, "id": newID()})
}

// SendRaw writes xml to the stream as it is, for stanzas the other
// methods cannot make.
func (c *Client) SendRaw(xml string) {
	c.t.Helper()
	c.command(map[string]any{"cmd": "raw", "xml": xml})
}

// Sync returns once the server has answered a ping sent after everything
// the client sent before: by then it has routed, delivered or stored
// those stanzas (a server handles one stream's stanzas in order).
func (c *Client) Sync() {
	c.t.Helper()
	c.command(map[string]any{"cmd": "sync"})
}

// Subscribe asks jid for a subscription to its presence.
func (c *Client) Subscribe(jid string) {
	c.t.Helper()
	c.command(map[string]any{"cmd": "subscribe", "jid": jid})
}

// Unsubscribe cancels the client's subscription to jid's presence.
func (c *Client) Unsubscribe(jid string) {
	c.t.Helper()
	c.command(map[string]any{"cmd": "unsubscribe", "jid": jid})
}

// ApproveSubscription lets jid see the client's presence (after jid's
// "subscribe"), and sends jid the client's presence.
func (c *Client) ApproveSubscription(jid string) {
	c.t.Helper()
	c.command(map[string]any{"cmd": "approve", "jid": jid})
}

// DenySubscription refuses jid's subscription request, or revokes one
// approved before.
func (c *Client) DenySubscription(jid string) {
	c.t.Helper()
	c.command(map[string]any{"cmd": "deny", "jid": jid})
}

// AutoApprove makes the client approve every subscription request as it
// comes (on), or leave them to the test (off, the default). It lasts
// until the next Reconnect.
func (c *Client) AutoApprove(on bool) {
	c.t.Helper()
	c.command(map[string]any{"cmd": "auto_approve", "on": on})
}

// Presence broadcasts the client's presence: show is "" (available),
// "away", "chat", "dnd" or "xa", or "unavailable" to go offline while
// staying connected.
func (c *Client) Presence(show, status string) {
	c.t.Helper()
	c.command(map[string]any{"cmd": "presence", "show": show, "status": status})
}

// Connected reports whether the client's stream is up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exited == nil {
		return false
	}
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// Reconnect logs in again (as a new resource), after a "disconnected" or
// closing a stream still up first, and fails the test if it cannot.
func (c *Client) Reconnect() {
	c.t.Helper()
	c.Close()
	if err := c.login1(); err != nil {
		c.t.Fatal(err)
	}
}

// Close logs out (unavailable presence, end of stream) and waits for the
// driver to exit. It is safe to call more than once.
func (c *Client) Close() {
	c.mu.Lock()
	stdin, exited, cmd, closed := c.stdin, c.exited, c.cmd, c.closed
	c.closed = true
	c.mu.Unlock()
	if cmd == nil || closed {
		if exited != nil {
			<-exited
		}
		return
	}
	// Closing stdin is the driver's signal to log out.
	stdin.Close()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}
