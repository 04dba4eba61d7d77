// Package xmpp is the XMPP connector: Outpost logs in to an XMPP server as
// an account of its own, and the configured users chat with it from any
// client. A chat "+15555550100 hello" sends an SMS (answered "queued
// <id>", later "delivered" or "failed"); the phone's answers, and SMS that
// routes deliver to xmpp:<jid>, come back as chat messages; admins run the
// box by chat (status, retry, cancel, ban, stats, audit…).
//
// go-xmpp (github.com/xmppo/go-xmpp) does not reconnect and its writes are
// not safe for concurrent use: one goroutine per connection (the owner)
// writes everything Outpost sends, another reads; a lost connection is
// dialled again with capped backoff, and nothing else notices but the
// deliveries, which wait for it without using up their attempts.
package xmpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	goxmpp "github.com/xmppo/go-xmpp"

	"github.com/outpost-sms/outpost/bridge"
)

// Roles of the users.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// User is one account allowed to use Outpost by chat.
type User struct {
	JID  string // bare: alice@example.org
	Role string // RoleUser or RoleAdmin
}

// Options configure the connector.
type Options struct {
	// JID and Password are Outpost's own account.
	JID, Password string
	// Server is host:port ("": the JID's domain, found by its SRV
	// record or port 5222).
	Server string
	// DirectTLS connects with TLS at once (XEP-0368, port 5223);
	// otherwise STARTTLS, which is required: Outpost never logs in over
	// a connection that is not encrypted.
	DirectTLS bool
	// CAFile is the PEM file of the CA that signed the server's
	// certificate (default: the system's). The certificate is always
	// checked, for the JID's domain.
	CAFile string
	// Users are who may chat with Outpost; anyone else is refused.
	Users []User
	// MaxParts is the SMS parts a chat may take before Outpost asks to
	// confirm it (default 3).
	MaxParts int
	// Parts counts the SMS parts a text takes to a number (the SMS
	// connector's encoder), or says why it cannot be sent.
	Parts func(number, text string) (int, error)
	// ConversationTTL is how long a phone's SMS go to the user who last
	// chatted to it (default 7 days).
	ConversationTTL time.Duration
	// ReconnectMin and ReconnectMax bound the wait between connection
	// attempts (defaults 1s and 1m).
	ReconnectMin, ReconnectMax time.Duration
	// LoginTimeout bounds a login (default 30s).
	LoginTimeout time.Duration
	// PingEvery is how often an idle connection is checked with a ping
	// (XEP-0199); PingTimeout how long its answer may take before the
	// connection is taken for dead (defaults 60s and 20s).
	PingEvery, PingTimeout time.Duration
	// RefuseEvery is how often a stranger is told they may not use the
	// gateway (default 1h); in between they are ignored (and logged).
	RefuseEvery time.Duration
	// ModemsReady counts the modems ready to send and configured, for
	// the presence (nil: not shown).
	ModemsReady func() (ready, total int)
	// Status is the daemon's status (as GET /v1/status), for the admin
	// command "status".
	Status func(ctx context.Context) (any, error)
	Log    *slog.Logger
}

// Connector is the XMPP connector, named "xmpp".
type Connector struct {
	opt    Options
	router *bridge.Router
	tls    *tls.Config
	users  map[string]string // bare JID → role
	self   string            // Outpost's bare JID

	mu        sync.Mutex
	sess      *session      // the live connection, or nil
	readyCh   chan struct{} // closed while a session is live
	refused   map[string]stranger
	pending   map[string]pendingSend // long texts waiting for "yes", by user
	presence  chan struct{}          // a change the presence may show
	lastState string                 // the link's state, for status
	// hung is closed once the last login given up on has returned
	// (nil: none pending); Run's alone.
	hung chan struct{}
	// plain logs in with SASL PLAIN (over the verified TLS connection)
	// after a server refused go-xmpp's SCRAM for its channel binding:
	// go-xmpp says "y" (it thinks the server cannot bind) when the
	// server offers no SCRAM-PLUS, and Prosody 0.12 on TLS 1.3 (no
	// tls-unique) takes that for a downgrade.
	plain atomic.Bool
}

// New returns the connector.
func New(opt Options, r *bridge.Router) (*Connector, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.MaxParts <= 0 {
		opt.MaxParts = 3
	}
	if opt.ConversationTTL <= 0 {
		opt.ConversationTTL = 7 * 24 * time.Hour
	}
	if opt.ReconnectMin <= 0 {
		opt.ReconnectMin = time.Second
	}
	if opt.ReconnectMax <= 0 {
		opt.ReconnectMax = time.Minute
	}
	opt.ReconnectMax = max(opt.ReconnectMax, opt.ReconnectMin)
	if opt.LoginTimeout <= 0 {
		opt.LoginTimeout = 30 * time.Second
	}
	if opt.PingEvery <= 0 {
		opt.PingEvery = time.Minute
	}
	if opt.PingTimeout <= 0 {
		opt.PingTimeout = 20 * time.Second
	}
	if opt.RefuseEvery <= 0 {
		opt.RefuseEvery = time.Hour
	}
	self, domain, err := splitJID(opt.JID)
	if err != nil {
		return nil, fmt.Errorf("xmpp.jid: %w", err)
	}
	c := &Connector{opt: opt, router: r, self: self, users: map[string]string{}, readyCh: make(chan struct{}),
		refused: map[string]stranger{}, pending: map[string]pendingSend{}, presence: make(chan struct{}, 1)}
	for _, u := range opt.Users {
		bare, _, err := splitJID(u.JID)
		if err != nil {
			return nil, fmt.Errorf("xmpp.user %q: %w", u.JID, err)
		}
		c.users[bare] = u.Role
	}
	c.tls = &tls.Config{ServerName: domain, MinVersion: tls.VersionTLS12}
	if opt.CAFile != "" {
		pem, err := os.ReadFile(opt.CAFile)
		if err != nil {
			return nil, fmt.Errorf("xmpp.ca_file: %w", err)
		}
		c.tls.RootCAs = x509.NewCertPool()
		if !c.tls.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("xmpp.ca_file %s: no PEM certificate in it", opt.CAFile)
		}
	}
	r.OnInboundTx(c.answer)
	r.OnStatusTx(c.notice)
	r.OnModemStatus(func(string, any) { c.presenceChanged() })
	return c, nil
}

// splitJID is jid's bare form, lower-cased (XMPP servers compare the
// user and the domain without case), and its domain.
func splitJID(jid string) (bare, domain string, err error) {
	jid = strings.TrimSpace(jid)
	if _, err := bridge.ParseAddress("xmpp:" + jid); err != nil || jid == "" {
		return "", "", fmt.Errorf("%q is not a Jabber ID: give user@example.org", jid)
	}
	bare, _, _ = strings.Cut(jid, "/")
	bare = strings.ToLower(bare)
	node, domain, ok := strings.Cut(bare, "@")
	if !ok || node == "" {
		return "", "", fmt.Errorf("%q has no user part: give user@example.org", jid)
	}
	return bare, domain, nil
}

// bareOf is the bare, lower-cased form of a JID as a stanza gives it.
func bareOf(jid string) string {
	bare, _, _ := strings.Cut(jid, "/")
	return strings.ToLower(bare)
}

// Name implements bridge.Connector.
func (c *Connector) Name() string { return "xmpp" }

// Scheme implements bridge.Addressed: routes and sends reach xmpp:<jid>.
func (c *Connector) Scheme() string { return bridge.SchemeXMPP }

// ValidateAddress implements bridge.AddressValidator.
func (c *Connector) ValidateAddress(value string) error {
	_, _, err := splitJID(value)
	return err
}

// Lanes implements bridge.Laned: each user's chat messages go one at a
// time, oldest first, whatever happens to another's.
func (c *Connector) Lanes() []string {
	out := make([]string, 0, len(c.users))
	for u := range c.users {
		out = append(out, u)
	}
	return out
}

// WaitReady implements bridge.Waiter: deliveries wait for a connection.
func (c *Connector) WaitReady(ctx context.Context) error {
	c.mu.Lock()
	ready := c.readyCh
	c.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// role is user's role, "" for a stranger.
func (c *Connector) role(user string) string { return c.users[user] }

// Run connects and keeps connecting until ctx ends: a lost connection is
// dialled again after a wait that doubles up to ReconnectMax.
func (c *Connector) Run(ctx context.Context, _ *bridge.Router) error {
	wait := c.opt.ReconnectMin
	for ctx.Err() == nil {
		// A login given up on keeps its goroutine and socket until the
		// server answers or closes: go-xmpp's handshake reads with no
		// deadline, and its connection cannot be reached before the login
		// returns. A server that accepts and never answers would otherwise
		// cost one of each per attempt, for ever; its socket ends when the
		// server restarts or the path dies (TCP keepalive).
		if c.hung != nil {
			select {
			case <-c.hung:
				c.hung = nil
			case <-ctx.Done():
				continue
			}
		}
		c.linkStatus("connecting", "")
		cl, conn, err := c.dial(ctx)
		if err != nil && strings.Contains(err.Error(), "channel binding") && !c.plain.Load() {
			c.opt.Log.Info("xmpp: the server refused SCRAM's channel binding; logging in with PLAIN over the verified TLS connection", "err", err)
			c.plain.Store(true)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			c.opt.Log.Warn("xmpp: cannot log in; trying again", "server", c.serverName(), "err", err, "retry_in", wait.String())
			c.linkStatus("down", err.Error())
			sleep(ctx, wait)
			wait = min(2*wait, c.opt.ReconnectMax)
			continue
		}
		c.opt.Log.Info("xmpp: logged in", "jid", c.self, "server", c.serverName())
		began := time.Now()
		err = c.serve(ctx, cl, conn)
		if ctx.Err() != nil {
			break
		}
		if time.Since(began) >= stableSession {
			wait = c.opt.ReconnectMin
		}
		c.opt.Log.Warn("xmpp: connection lost; connecting again", "err", err, "retry_in", wait.String())
		c.linkStatus("down", err.Error())
		sleep(ctx, wait)
		wait = min(2*wait, c.opt.ReconnectMax)
	}
	c.linkStatus("stopped", "")
	return nil
}

// stableSession is how long a connection must have lasted for the next
// attempt to start again from ReconnectMin: a server that drops every
// session right after the login is not dialled every second.
const stableSession = 30 * time.Second

func (c *Connector) serverName() string {
	if c.opt.Server != "" {
		return c.opt.Server
	}
	_, domain, _ := strings.Cut(c.self, "@")
	return domain
}

// linkStatus shows the connection's state in the daemon's status.
func (c *Connector) linkStatus(state, lastErr string) {
	c.mu.Lock()
	c.lastState = state
	c.mu.Unlock()
	st := map[string]any{"state": state, "jid": c.self, "server": c.serverName()}
	if lastErr != "" {
		st["error"] = lastErr
	}
	c.router.LinkStatus("xmpp", st)
}

// dial logs in. go-xmpp gives no way to close a connection that a read
// is blocked on but its own Close, which reads the stream itself (racing
// the reader) and leaves a goroutine behind for 10 s: the connection
// under the client is taken once, here, before anything else uses the
// client (rawConn), so that Outpost can set write deadlines on it and
// close it.
func (c *Connector) dial(ctx context.Context) (*goxmpp.Client, net.Conn, error) {
	o := goxmpp.Options{
		Host: c.opt.Server, User: c.self, Password: c.opt.Password, Resource: "outpost",
		TLSConfig: c.tls.Clone(), NoTLS: !c.opt.DirectTLS, StartTLS: !c.opt.DirectTLS,
		DialTimeout: 15 * time.Second, Status: "away", StatusMessage: "starting",
		SoftwareName: "Outpost",
	}
	if c.plain.Load() {
		o.Mechanism = "PLAIN"
	}
	type result struct {
		cl   *goxmpp.Client
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	abandoned := make(chan struct{})
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		cl, err := o.NewClient()
		var conn net.Conn
		if err == nil {
			if conn = rawConn(cl); conn == nil {
				err = errors.New("go-xmpp's client has no connection field: Outpost needs go-xmpp v0.4.1")
			} else if dec, _ := rawDecoder(cl); dec == nil {
				conn.Close()
				err = errors.New("go-xmpp's client has no decoder field: Outpost needs go-xmpp v0.4.1")
			} else if !cl.IsEncrypted() {
				conn.Close()
				err = errors.New("the connection is not encrypted")
			}
		}
		select {
		case done <- result{cl, conn, err}:
		case <-abandoned:
			if conn != nil {
				conn.Close()
			}
		}
	}()
	t := time.NewTimer(c.opt.LoginTimeout)
	defer t.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, nil, loginError(r.err)
		}
		return r.cl, r.conn, nil
	case <-t.C:
		close(abandoned)
		c.hung = returned
		return nil, nil, fmt.Errorf("no answer to the login within %s (the next attempt waits for the server to answer or close that connection)", c.opt.LoginTimeout)
	case <-ctx.Done():
		close(abandoned)
		return nil, nil, ctx.Err()
	}
}

// loginError says what a failed login means for the operator.
func loginError(err error) error {
	s := err.Error()
	switch {
	case strings.Contains(s, "channel binding"):
		return err
	case strings.Contains(s, "not-authorized"), strings.Contains(s, "auth failure"):
		return fmt.Errorf("the server refused xmpp.jid and xmpp.password (%v)", err)
	case strings.Contains(s, "x509:"), strings.Contains(s, "tls:"):
		return fmt.Errorf("the server's certificate is not trusted for this domain (set xmpp.ca_file for a private CA): %v", err)
	}
	return err
}

var netConnType = reflect.TypeOf((*net.Conn)(nil)).Elem()

// rawConn is the connection under cl (go-xmpp v0.4.1 keeps it unexported
// in Client.conn), or nil when the client has no such field.
func rawConn(cl *goxmpp.Client) net.Conn {
	f := reflect.ValueOf(cl).Elem().FieldByName("conn")
	if !f.IsValid() || f.Type() != netConnType {
		return nil
	}
	return *(*net.Conn)(unsafe.Pointer(f.UnsafeAddr()))
}

var (
	decoderType = reflect.TypeOf((*xml.Decoder)(nil))
	mutexType   = reflect.TypeOf(sync.Mutex{})
)

// rawDecoder is go-xmpp's stream decoder (Client.p) and the lock its
// next() takes around decoding an element (Client.nextMutex), or nils
// when the client has no such fields.
func rawDecoder(cl *goxmpp.Client) (*xml.Decoder, *sync.Mutex) {
	v := reflect.ValueOf(cl).Elem()
	p, mu := v.FieldByName("p"), v.FieldByName("nextMutex")
	if !p.IsValid() || p.Type() != decoderType || !mu.IsValid() || mu.Type() != mutexType {
		return nil, nil
	}
	return *(**xml.Decoder)(unsafe.Pointer(p.UnsafeAddr())), (*sync.Mutex)(unsafe.Pointer(mu.UnsafeAddr()))
}

// stanzaError reports whether err, from a Recv that started at offset
// before of dec, is about one stanza go-xmpp could not make sense of
// (an avatar notice without items, from anyone, is "no avatar metadata
// items available" or io.EOF) rather than the stream: the stanza was
// read whole (the offset moved, and the lock that next() keeps after an
// element fails to decode is free), and it is no stream error. The
// stream's own errors stay: the decoder returns them again without
// reading.
func stanzaError(dec *xml.Decoder, mu *sync.Mutex, before int64, err error) bool {
	if dec.InputOffset() == before || strings.HasPrefix(err.Error(), "stream error") || !mu.TryLock() {
		return false
	}
	mu.Unlock()
	return true
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
