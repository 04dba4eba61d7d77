package xmpp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goxmpp "github.com/xmppo/go-xmpp"
)

// writeTimeout bounds one write to the server: a connection that takes
// no more is dead.
const writeTimeout = 20 * time.Second

// write is one stanza for the owner to send. With ack, the owner sends a
// ping behind it and answers ack once the server answered the ping: the
// server has then read and handled the stanza (it handles a stream in
// order), so a connection that drops right after the write loses nothing
// that was taken for delivered.
type write struct {
	stanza string
	ack    chan error
	// id and to are the stanza's id and bare recipient: an error
	// message the server sends back from the recipient with that id
	// fails the delivery (bounced) instead of the ping confirming it.
	id, to string
}

// bounced is the error of a chat message the server sent back as an
// error (an unknown or malformed account on its domain): sending it
// again cannot help.
type bounced struct{ to, why string }

func (b bounced) Error() string {
	return fmt.Sprintf("the XMPP server sent the message to %s back: %s", b.to, b.why)
}

// maxBacklog bounds the text of the chats waiting for their answer, in
// bytes: past it, a chat is answered busy (the user sends it again)
// rather than held, which would stop the owner, and with it the answers
// being written. A count (256 chats) answered a user's burst of 300
// with 29 busy; 4 MiB takes thousands of short chats.
const maxBacklog = 4 << 20

// session is one logged-in connection.
type session struct {
	c      *Connector
	cl     *goxmpp.Client
	conn   net.Conn
	writes chan write
	done   chan struct{} // closed when the session has ended
}

var stanzaSeq atomic.Uint64

// stanzaPrefix makes Outpost's stanza ids unique across restarts.
var stanzaPrefix = func() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}()

// newID is a fresh stanza id.
func newID(kind string) string {
	return fmt.Sprintf("%s-%s-%d", kind, stanzaPrefix, stanzaSeq.Add(1))
}

// esc escapes s for XML text and attribute values; characters XML cannot
// carry become U+FFFD.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func chatStanza(to, id, body string) string {
	return fmt.Sprintf("<message to='%s' type='chat' id='%s'><body>%s</body></message>", esc(to), esc(id), esc(body))
}

func pingStanza(id, domain string) string {
	return fmt.Sprintf("<iq type='get' id='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>", esc(id), esc(domain))
}

// send queues a stanza for the owner without waiting for it; false when
// the session has ended.
func (s *session) send(stanza string) bool {
	select {
	case s.writes <- write{stanza: stanza}:
		return true
	case <-s.done:
		return false
	}
}

// reply answers a chat.
func (s *session) reply(to, text string) { s.send(chatStanza(to, newID("re"), text)) }

// errSessionEnded is the outage of a delivery whose connection ended.
var errSessionEnded = errors.New("the connection to the XMPP server ended")

// deliver sends stanza and waits until the server has handled it.
func (s *session) deliver(ctx context.Context, stanza, id, to string) error {
	ack := make(chan error, 1)
	select {
	case s.writes <- write{stanza: stanza, ack: ack, id: id, to: to}:
	case <-s.done:
		return errSessionEnded
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ack:
		return err
	case <-s.done:
		select {
		case err := <-ack:
			return err
		default:
			return errSessionEnded
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// current is the live session, or nil.
func (c *Connector) current() *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// serve runs one logged-in connection until it fails or ctx ends: the
// reader hands stanzas to the owner (this goroutine), which alone
// writes; chats are answered one at a time, in order, by a worker.
func (c *Connector) serve(ctx context.Context, cl *goxmpp.Client, conn net.Conn) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &session{c: c, cl: cl, conn: conn, writes: make(chan write), done: make(chan struct{})}
	_, domain, _ := strings.Cut(c.self, "@")

	events := make(chan any, 64)
	readErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	dec, mu := rawDecoder(cl)
	go func() {
		defer wg.Done()
		for {
			before := dec.InputOffset()
			st, err := cl.Recv()
			if err != nil {
				// Anyone can send Outpost a stanza go-xmpp fails on:
				// it costs them the stanza, not Outpost its connection.
				if stanzaError(dec, mu, before, err) {
					c.opt.Log.Debug("xmpp: skipped a stanza go-xmpp cannot read", "err", err)
					continue
				}
				readErr <- err
				return
			}
			select {
			case events <- st:
			case <-ctx.Done():
				return
			}
		}
	}()
	chats := make(chan goxmpp.Chat)
	go func() {
		defer wg.Done()
		for ch := range chats {
			c.handleChat(ctx, s, ch)
		}
	}()

	out := func(stanza string) error {
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := cl.SendOrg(stanza)
		conn.SetWriteDeadline(time.Time{})
		return err
	}
	type waiting struct {
		ack    chan error
		sent   time.Time
		id, to string // the stanza's (write)
	}
	acks := map[string]waiting{} // ping id → the delivery it confirms
	keepID, keepSent := "", time.Time{}
	lastRecv := time.Now()
	shown := "" // the presence last sent

	defer func() {
		c.mu.Lock()
		c.sess = nil
		c.readyCh = make(chan struct{})
		c.mu.Unlock()
		close(s.done)
		out("</stream:stream>")
		conn.Close()
		cancel()
		for _, w := range acks {
			w.ack <- errSessionEnded
		}
		close(chats)
		wg.Wait()
	}()

	// Ask for the roster (to keep it in step with the users), and let
	// every user see Outpost's presence (a pre-approval where they have
	// not asked yet).
	if err := out(fmt.Sprintf("<iq type='get' id='%s'><query xmlns='jabber:iq:roster'/></iq>", newID("roster"))); err != nil {
		return err
	}
	if err := c.sendPresence(out, &shown, true); err != nil {
		return err
	}
	c.mu.Lock()
	c.sess = s
	close(c.readyCh)
	c.mu.Unlock()
	c.linkStatus("up", "")

	tick := time.NewTicker(min(c.opt.PingTimeout, c.opt.PingEvery, 5*time.Second) / 2)
	defer tick.Stop()
	presenceTick := time.NewTicker(30 * time.Second)
	defer presenceTick.Stop()
	// The users' chats waiting for the worker, oldest first.
	var backlog []goxmpp.Chat
	backlogBytes := 0
	for {
		var next chan goxmpp.Chat
		var head goxmpp.Chat
		if len(backlog) > 0 {
			next, head = chats, backlog[0]
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			return fmt.Errorf("read: %w", err)
		case next <- head:
			backlogBytes -= len(head.Text)
			backlog[0] = goxmpp.Chat{}
			backlog = backlog[1:]
		case ev := <-events:
			lastRecv = time.Now()
			switch v := ev.(type) {
			case goxmpp.Chat:
				if v.Type == "error" {
					// A bounce of a delivery comes before the answer to
					// the ping behind it (the server handles the stream
					// in order) when the server knows at once, as for
					// its own accounts; one from another server comes
					// later and is only logged.
					matched := false
					for pid, w := range acks {
						if v.ID != "" && v.ID == w.id && bareOf(v.Remote) == w.to {
							delete(acks, pid)
							w.ack <- bounced{to: w.to, why: bounceReason(v)}
							matched = true
							break
						}
					}
					// Anyone can send error messages: only a bounce of a
					// delivery is worth the log's attention.
					level := slog.LevelDebug
					if matched || strings.HasPrefix(v.ID, "sms-") {
						level = slog.LevelInfo
					}
					c.opt.Log.Log(ctx, level, "xmpp: the server sent a message back", "from", v.Remote, "id", v.ID, "why", bounceReason(v))
					continue
				}
				if v.Type == "groupchat" || bareOf(v.Remote) == c.self {
					continue
				}
				if strings.TrimSpace(v.Text) == "" {
					continue // a chat state, a receipt: nothing to answer
				}
				if c.role(bareOf(v.Remote)) == "" {
					// Strangers are answered here, not queued behind
					// the users' chats: a flood of them costs a map
					// lookup each, and at most one answer an hour.
					if text := c.refusal(v.Remote); text != "" {
						if err := out(chatStanza(v.Remote, newID("re"), text)); err != nil {
							return err
						}
					}
					continue
				}
				if backlogBytes+len(v.Text) > maxBacklog {
					c.opt.Log.Warn("xmpp: too many chats waiting; one is answered busy", "from", v.Remote)
					if err := out(chatStanza(v.Remote, newID("re"), "Busy: too many messages at once. Send it again in a minute.")); err != nil {
						return err
					}
					continue
				}
				backlog = append(backlog, v)
				backlogBytes += len(v.Text)
			case goxmpp.Presence:
				if err := c.onPresence(out, v); err != nil {
					return err
				}
			case goxmpp.IQ:
				// Only the server answers Outpost's pings: ids are
				// guessable from any chat Outpost sent, and a stranger's
				// forged answer would count a delivery done early.
				fromServer := v.From == "" || v.From == domain || bareOf(v.From) == c.self
				if v.ID == keepID && fromServer {
					keepID = ""
				}
				if w, ok := acks[v.ID]; ok && fromServer {
					delete(acks, v.ID)
					w.ack <- nil
					continue
				}
				if err := c.onIQ(out, v); err != nil {
					return err
				}
			}
		case w := <-s.writes:
			stanza := w.stanza
			var id string
			if w.ack != nil {
				id = newID("ping")
				stanza += pingStanza(id, domain)
			}
			if err := out(stanza); err != nil {
				if w.ack != nil {
					w.ack <- fmt.Errorf("write: %w", err)
				}
				return fmt.Errorf("write: %w", err)
			}
			if w.ack != nil {
				acks[id] = waiting{w.ack, time.Now(), w.id, w.to}
			}
		case <-tick.C:
			now := time.Now()
			if keepID != "" && now.Sub(keepSent) > c.opt.PingTimeout {
				return fmt.Errorf("no answer to a ping within %s", c.opt.PingTimeout)
			}
			for _, w := range acks {
				if now.Sub(w.sent) > c.opt.PingTimeout {
					return fmt.Errorf("no answer to a ping within %s", c.opt.PingTimeout)
				}
			}
			if keepID == "" && now.Sub(lastRecv) >= c.opt.PingEvery {
				keepID, keepSent = newID("ping"), now
				if err := out(pingStanza(keepID, domain)); err != nil {
					return fmt.Errorf("write: %w", err)
				}
			}
			c.forgetStale(now)
		case <-c.presence:
			if err := c.sendPresence(out, &shown, false); err != nil {
				return err
			}
		case <-presenceTick.C:
			if err := c.sendPresence(out, &shown, false); err != nil {
				return err
			}
		}
	}
}

// presenceChanged asks the owner to look at the presence again.
func (c *Connector) presenceChanged() {
	select {
	case c.presence <- struct{}{}:
	default:
	}
}

// presenceText is what Outpost's presence says, and whether it is away
// (no modem ready).
func (c *Connector) presenceText() (string, bool) {
	queued := 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if q, err := c.router.QueueDepths(ctx); err == nil {
		if sms := c.router.ConnectorFor("tel"); sms != nil {
			queued = q[sms.Name()]["queued"] + q[sms.Name()]["sending"]
		}
	}
	if c.opt.ModemsReady == nil {
		return fmt.Sprintf("%d queued", queued), false
	}
	ready, _ := c.opt.ModemsReady()
	noun := "modems"
	if ready == 1 {
		noun = "modem"
	}
	return fmt.Sprintf("%d %s ready, %d queued", ready, noun, queued), ready == 0
}

// sendPresence sends the presence when it changed (or always).
func (c *Connector) sendPresence(out func(string) error, shown *string, always bool) error {
	text, away := c.presenceText()
	st := "<presence><status>" + esc(text) + "</status></presence>"
	if away {
		st = "<presence><show>away</show><status>" + esc(text) + "</status></presence>"
	}
	if st == *shown && !always {
		return nil
	}
	*shown = st
	return out(st)
}

// onPresence accepts the subscription requests of users (and asks for
// theirs), and ignores everyone else's.
func (c *Connector) onPresence(out func(string) error, p goxmpp.Presence) error {
	from := bareOf(p.From)
	if p.Type != "subscribe" {
		return nil
	}
	if c.role(from) == "" {
		c.opt.Log.Info("xmpp: ignored a subscription request from a stranger", "from", from)
		return nil
	}
	if err := out(fmt.Sprintf("<presence to='%s' type='subscribed'/>", esc(from))); err != nil {
		return err
	}
	return out(fmt.Sprintf("<presence to='%s' type='subscribe'/>", esc(from)))
}

// rosterQuery is a roster result or push.
type rosterQuery struct {
	XMLName xml.Name `xml:"jabber:iq:roster query"`
	Items   []struct {
		JID          string `xml:"jid,attr"`
		Subscription string `xml:"subscription,attr"`
		Ask          string `xml:"ask,attr"`
	} `xml:"item"`
}

// onIQ keeps the roster in step with the users and answers what the
// server or a client asks that go-xmpp does not.
func (c *Connector) onIQ(out func(string) error, iq goxmpp.IQ) error {
	var q rosterQuery
	// Only the account's own server speaks for its roster (RFC 6121
	// 2.1.6): anyone else's is refused below like any other request.
	own := iq.From == "" || bareOf(iq.From) == c.self
	isRoster := own && len(iq.Query) > 0 && xml.Unmarshal(iq.Query, &q) == nil
	switch {
	case iq.Type == "result" && isRoster && strings.HasPrefix(iq.ID, "roster-"):
		return c.syncRoster(out, q)
	case iq.Type == "set" && isRoster:
		// A roster push: acknowledged (RFC 6121 2.1.6).
		return out(fmt.Sprintf("<iq type='result' id='%s'/>", esc(iq.ID)))
	case iq.Type == "get" || iq.Type == "set":
		return out(fmt.Sprintf("<iq type='error' to='%s' id='%s'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", esc(iq.From), esc(iq.ID)))
	}
	return nil
}

// syncRoster makes the roster the users: each one subscribed both ways
// (asked where not yet), anyone else removed.
func (c *Connector) syncRoster(out func(string) error, q rosterQuery) error {
	have := map[string]string{}
	for _, it := range q.Items {
		jid := bareOf(it.JID)
		have[jid] = it.Subscription
		if c.role(jid) == "" {
			c.opt.Log.Info("xmpp: removing a roster entry that is no configured user", "jid", jid)
			if err := out(fmt.Sprintf("<iq type='set' id='%s'><query xmlns='jabber:iq:roster'><item jid='%s' subscription='remove'/></query></iq>", newID("rm"), esc(it.JID))); err != nil {
				return err
			}
		}
	}
	for u := range c.users {
		sub := have[u]
		if sub != "both" && sub != "from" {
			if err := out(fmt.Sprintf("<presence to='%s' type='subscribed'/>", esc(u))); err != nil {
				return err
			}
		}
		if sub != "both" && sub != "to" {
			if err := out(fmt.Sprintf("<presence to='%s' type='subscribe'/>", esc(u))); err != nil {
				return err
			}
		}
	}
	return nil
}

// receiptRequested reports whether a chat asked for a XEP-0184 receipt.
func receiptRequested(ch goxmpp.Chat) bool {
	for _, e := range ch.OtherElem {
		if e.XMLName.Space == "urn:xmpp:receipts" && e.XMLName.Local == "request" {
			return true
		}
	}
	return false
}

// receiptStanza is the XEP-0184 receipt (itself id) of the chat message
// of.
func receiptStanza(to, id, of string) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<message to='%s' id='%s'><received xmlns='urn:xmpp:receipts' id='%s'/></message>", esc(to), esc(id), esc(of))
	return b.String()
}

// bounceReason is what an error message says of why: its condition (an
// element of the error, as go-xmpp keeps them), else its text.
func bounceReason(v goxmpp.Chat) string {
	for _, e := range v.OtherElem {
		if e.XMLName.Local == "error" {
			inner := e.InnerXML
			if i := strings.Index(inner, "<"); i >= 0 {
				name := inner[i+1:]
				if j := strings.IndexAny(name, " />"); j > 0 {
					return name[:j]
				}
			}
		}
	}
	if t := strings.TrimSpace(v.Text); t != "" {
		return clip(t, 100)
	}
	return "no reason given"
}
