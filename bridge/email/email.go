// Package email is the connector between mail and SMS. Its SMTP server
// takes mail to <number>@<domain> from allowed senders and turns each one
// into a send request (committed before the 250; a relay that sends the
// same mail again, same Message-ID, stores it once), and it remembers who
// mailed each phone: the phone's SMS answers come back to that address as
// email, threaded on the conversation, through an SMTP relay.
package email

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// MaxMailBytes bounds one mail as it comes over SMTP.
const MaxMailBytes = 10 << 20

// MaxRecipients bounds the phones one mail goes to.
const MaxRecipients = 100

// DefaultSubject is Options.SubjectTemplate's default.
const DefaultSubject = "SMS from {from}"

// Options configure the connector.
type Options struct {
	// Listen is the SMTP server's host:port ("": no mail comes in).
	Listen string
	// Domain is the phones' mail domain: mail goes to <number>@Domain,
	// and answers come from there.
	Domain string
	// Allow lists the senders taken: "ops@ngo.org" or "*@example.org".
	Allow []string
	// MaxParts bounds the SMS parts of one mail's text (default 3).
	MaxParts int
	// TLSCert and TLSKey (PEM files) make the server offer STARTTLS.
	TLSCert, TLSKey string
	// Users are the accounts (name → bcrypt hash) that must AUTH PLAIN
	// before they send (none: no AUTH). Over TLS only, unless the server
	// listens on loopback.
	Users map[string]string
	// Parts counts the SMS parts a text takes to a number (the SMS
	// connector's encoder), or says why it cannot be sent.
	Parts func(number, text string) (int, error)
	// SMTP is the relay answers go out through: smtp://host:port
	// (STARTTLS when offered) or smtps://host:port ("": none).
	SMTP           string
	User, Password string
	// RequireTLS refuses to send over smtp:// without STARTTLS.
	RequireTLS bool
	// CAFile is the PEM file of the CA that signed the relay's
	// certificate (default: the system's).
	CAFile string
	// ConversationTTL is how long a phone's answers go to the address
	// that last mailed it (default 7 days).
	ConversationTTL time.Duration
	// Timeout bounds one mail sent to the relay (default 60s).
	Timeout time.Duration
	// SubjectPrefix sends a mail's subject (its "Re:"s taken off) as the
	// first line of the SMS, before the text, counted in MaxParts
	// (email.subject = "prefix"); otherwise the subject is not sent.
	SubjectPrefix bool
	// SubjectTemplate is the subject of a phone's SMS mailed when it
	// answers no mail with a subject: {from} and {number} are the phone's
	// number, {modem} the modem it came in on (default DefaultSubject).
	SubjectTemplate string
	Log             *slog.Logger
	// CrashAt names a point at which to SIGKILL the process (tests).
	CrashAt string
}

// Connector is the email connector, named "email".
type Connector struct {
	opt    Options
	router *bridge.Router
	roots  *x509.CertPool // nil: the system's
	tlsIn  *tls.Config    // STARTTLS of the server, or nil
	checks chan struct{}  // bounds the bcrypt comparisons at once
	ln     net.Listener
	srv    *smtp.Server
}

// New returns the connector; call Listen before the router runs.
func New(opt Options, r *bridge.Router) (*Connector, error) {
	if opt.MaxParts <= 0 {
		opt.MaxParts = 3
	}
	if opt.ConversationTTL <= 0 {
		opt.ConversationTTL = 7 * 24 * time.Hour
	}
	if opt.Timeout <= 0 {
		opt.Timeout = time.Minute
	}
	if strings.TrimSpace(opt.SubjectTemplate) == "" {
		opt.SubjectTemplate = DefaultSubject
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	c := &Connector{opt: opt, router: r, checks: make(chan struct{}, 2)}
	if opt.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(opt.TLSCert, opt.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("email.tls_cert/tls_key: %w", err)
		}
		c.tlsIn = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if opt.CAFile != "" {
		pem, err := os.ReadFile(opt.CAFile)
		if err != nil {
			return nil, fmt.Errorf("email.ca_file: %w", err)
		}
		c.roots = x509.NewCertPool()
		if !c.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("email.ca_file %s: no PEM certificate in it", opt.CAFile)
		}
	}
	if opt.SMTP != "" {
		r.OnInboundTx(c.answer)
		r.OnStatusTx(c.notice)
	} else if opt.Listen != "" {
		opt.Log.Warn("email.smtp is not set: mail to phones is taken, but the phones' answers are not mailed back")
	}
	return c, nil
}

// Name implements bridge.Connector.
func (c *Connector) Name() string { return "email" }

// Listen opens the SMTP server's port (nothing when Listen is empty), so
// that a port in use stops the daemon's start.
func (c *Connector) Listen() error {
	if c.opt.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", c.opt.Listen)
	if err != nil {
		return fmt.Errorf("email.listen: %w", err)
	}
	c.ln = &limitListener{Listener: ln, slots: make(chan struct{}, maxConns)}
	return nil
}

// maxConns bounds the SMTP connections open at once: past it, new ones
// wait in the kernel's backlog until one closes (each holds a file and a
// goroutine for up to the read timeout).
const maxConns = 64

// limitListener accepts a connection only while fewer than cap(slots)
// are open.
type limitListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	conn, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &slotConn{Conn: conn, free: func() { <-l.slots }}, nil
}

// slotConn gives its slot back once, when it is closed.
type slotConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.free)
	return err
}

// Close closes the SMTP server's port if Run did not (a daemon that
// failed to start after Listen).
func (c *Connector) Close() {
	if c.ln != nil {
		c.ln.Close()
	}
}

// Addr is the SMTP server's address ("" when it does not listen).
func (c *Connector) Addr() string {
	if c.ln == nil {
		return ""
	}
	return c.ln.Addr().String()
}

// Run implements bridge.Connector: it serves SMTP until ctx ends.
func (c *Connector) Run(ctx context.Context, _ *bridge.Router) error {
	if c.ln == nil {
		<-ctx.Done()
		return nil
	}
	s := smtp.NewServer(smtp.BackendFunc(func(conn *smtp.Conn) (smtp.Session, error) {
		if len(c.opt.Users) > 0 {
			return &authSession{session{c: c, ctx: ctx, conn: conn}}, nil
		}
		return &session{c: c, ctx: ctx, conn: conn}, nil
	}))
	s.Domain = c.opt.Domain
	s.TLSConfig = c.tlsIn
	// AUTH PLAIN without TLS only where the password does not cross a
	// network (the config refuses users on another listener without TLS).
	if host, _, err := net.SplitHostPort(c.opt.Listen); err == nil {
		ip := net.ParseIP(host)
		s.AllowInsecureAuth = host == "localhost" || (ip != nil && ip.IsLoopback())
	}
	s.MaxMessageBytes = MaxMailBytes
	s.MaxRecipients = MaxRecipients
	s.ReadTimeout = 5 * time.Minute
	s.WriteTimeout = time.Minute
	done := make(chan error, 1)
	go func() { done <- s.Serve(c.ln) }()
	select {
	case <-ctx.Done():
		s.Close()
		<-done
		return nil
	case err := <-done:
		return err
	}
}

// session is one SMTP transaction (or several, after RSET).
type session struct {
	c    *Connector
	ctx  context.Context
	conn *smtp.Conn
	user string // authenticated as, or ""
	from string
	to   []string // phone numbers
	// keywords: the mail is to keywords@<domain> (keywords.go).
	keywords bool
}

// authSession is a session where senders must AUTH first.
type authSession struct{ session }

func (s *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *authSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if identity != "" && identity != user {
			return smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "authentication failed: cannot act as another user")
		}
		if !s.c.checkPassword(user, pass) {
			s.c.opt.Log.Warn("email: failed login", "user", user, "remote", s.conn.Conn().RemoteAddr().String())
			time.Sleep(time.Second) // a guesser gets one try a second per connection
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}), nil
}

// dummyHash is compared when the user is unknown, so that the answer
// takes as long as for a known one: a bcrypt hash at the cost "outpost
// passwd" uses (bcrypt.DefaultCost; it was MinCost, which answered an
// unknown user in a fraction of the time). Written out, so that no
// process pays a bcrypt to start.
var dummyHash = []byte("$2a$10$FAdQ17lVTVWlmZcxxiM3vukZz0Mqs7NqeMt5BKvJI6DXSS8g4/9SO")

// checkPassword compares a password with the user's bcrypt hash, two at
// a time at most (each takes tens of milliseconds of a core).
func (c *Connector) checkPassword(user, pass string) bool {
	c.checks <- struct{}{}
	defer func() { <-c.checks }()
	hash, ok := c.opt.Users[user]
	if !ok {
		bcrypt.CompareHashAndPassword(dummyHash, []byte(pass))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) == nil
}

func smtpErr(code int, enh smtp.EnhancedCode, format string, args ...any) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: fmt.Sprintf(format, args...)}
}

func (s *session) Reset()        { s.from, s.to, s.keywords = "", nil, false }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.Reset()
	if len(s.c.opt.Users) > 0 && s.user == "" {
		return smtpErr(530, smtp.EnhancedCode{5, 7, 0}, "authentication required: AUTH PLAIN with an [[email.account]] first")
	}
	addr := strings.ToLower(strings.TrimSpace(from))
	if !plainAddress.MatchString(addr) {
		// A quoted local part ("a,b"@x) would be written back unquoted
		// in the answers' headers: an address list, or garbage.
		return smtpErr(553, smtp.EnhancedCode{5, 1, 7}, "sender address %q is not supported: only plain addresses (no quotes, commas, spaces or angle brackets)", from)
	}
	if !s.c.allowed(addr) {
		return smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "sender %q is not allowed to send SMS through this gateway (email.allow)", from)
	}
	s.from = addr
	return nil
}

// plainAddress is a mail address whose local part is a dot-atom: what
// Outpost writes back into the answers' headers as it is.
var plainAddress = regexp.MustCompile("^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9.-]+$")

// groupPrefix starts the local part of a group's address:
// group-nurses@<domain> sends to the group nurses.
const groupPrefix = "group-"

// phone is a number as a mail address's local part: +<digits>.
var phone = regexp.MustCompile(`^\+?[0-9]{3,20}$`)

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	local, domain, ok := strings.Cut(strings.TrimSpace(to), "@")
	if !ok || !strings.EqualFold(domain, s.c.opt.Domain) {
		return smtpErr(550, smtp.EnhancedCode{5, 1, 2}, "unknown recipient domain in %q: this gateway takes mail for <number>@%s only", to, s.c.opt.Domain)
	}
	if strings.EqualFold(local, KeywordsLocal) || s.keywords {
		if len(s.to) > 0 || s.keywords {
			return smtpErr(550, smtp.EnhancedCode{5, 5, 3}, "a mail to %s@%s goes alone: send it to no other address", KeywordsLocal, s.c.opt.Domain)
		}
		s.keywords = true
		return nil
	}
	if len(local) > len(groupPrefix) && strings.EqualFold(local[:len(groupPrefix)], groupPrefix) {
		// group-<name>@domain: the router expands group:<name>; an
		// unknown group is refused now, naming it.
		a, err := bridge.ParseAddress("group:" + local[len(groupPrefix):])
		if err != nil {
			return smtpErr(550, smtp.EnhancedCode{5, 1, 3}, "%q is not a group's address: %v", to, err)
		}
		if _, err := s.c.router.Expand([]string{a.String()}); err != nil {
			return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "%s: %v", strings.TrimSpace(to), err)
		}
		s.to = append(s.to, a.String())
		return nil
	}
	if !phone.MatchString(local) {
		return smtpErr(550, smtp.EnhancedCode{5, 1, 3}, "%q is not a phone number: write it in international form, +<country code><number>@%s, or group-<name>@%[2]s for a group", local, s.c.opt.Domain)
	}
	// A number without '+' is an international one, unless it starts
	// with 0: 00 is the international prefix (0015555550100@ is
	// +15555550100), a single 0 a national number (with [sms]
	// country_code, 0712345678@ is +254712345678). In its one form.
	if !strings.HasPrefix(local, "+") && !strings.HasPrefix(local, "0") {
		local = "+" + local
	}
	n, err := bridge.CanonicalPhone(local)
	if err != nil {
		return smtpErr(550, smtp.EnhancedCode{5, 1, 3}, "%q is not a phone number: %v", local, err)
	}
	s.to = append(s.to, n)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // too large: go-smtp answers 552 with the reason
	}
	msg, err := parseMail(raw)
	if err != nil {
		return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "%v", err)
	}
	b, err := readBody(msg)
	if err != nil {
		return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "cannot read the text of the mail: %v", err)
	}
	if s.keywords {
		return s.keywordMail(msg, b.Text)
	}
	subj := subject(msg.Header.Get("Subject"))
	withSubject := ""
	if s.c.opt.SubjectPrefix {
		b.Text = prefixed(subj, b.Text)
		withSubject = ", the subject included (email.subject = \"prefix\")"
	}
	if b.Text == "" {
		if s.c.opt.SubjectPrefix {
			return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "the mail has no text to send: no subject and no text (attachments are not sent)")
		}
		return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "the mail has no text to send (the subject is not sent; attachments are not sent)")
	}
	// The numbers the mail goes to, its groups expanded.
	addrs, err := s.c.router.Expand(s.to)
	if err != nil {
		return smtpErr(554, smtp.EnhancedCode{5, 1, 1}, "%v", err)
	}
	var phones []string
	for _, a := range addrs {
		if a.Scheme == bridge.SchemeTel {
			phones = append(phones, a.Value)
		}
	}
	if s.c.opt.Parts != nil {
		for _, to := range phones {
			n, err := s.c.opt.Parts(to, b.Text)
			if err != nil {
				return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "cannot send the text to %s: %v", to, err)
			}
			if n > s.c.opt.MaxParts {
				return smtpErr(554, smtp.EnhancedCode{5, 3, 4}, "text too long: %d characters%s take %d SMS parts, at most %d are allowed (email.max_parts); shorten it", len([]rune(b.Text)), withSubject, n, s.c.opt.MaxParts)
			}
		}
	}
	msgID := strings.TrimSpace(msg.Header.Get("Message-Id"))
	req := bridge.SendRequest{ID: requestID(msgID, msg.Header.Get("Date"), s.from, s.to, b.Text), To: s.to, Text: b.Text, Report: true, Source: "email",
		From: "mailto:" + s.from}
	id, err := s.c.router.SubmitTx(s.ctx, req, func(tx *store.Tx, m *store.Message) error {
		detail := "from " + s.from
		if msgID != "" {
			detail += ", Message-ID " + msgID
		}
		if err := tx.AppendEvent(m.ID, 0, "email", detail); err != nil {
			return err
		}
		for _, what := range b.Ignored {
			if err := tx.AppendEvent(m.ID, 0, "email", what); err != nil {
				return err
			}
		}
		// The mail itself, for the notice of an SMS of it that fails.
		if err := tx.SetEmailThread(m.ID, store.EmailThread{MailID: firstID(msgID), Refs: addRef(msg.Header.Get("References"), msgID), Subject: subj}); err != nil {
			return err
		}
		return s.c.remember(tx, s.from, phones, msgID, msg.Header.Get("References"), subj)
	})
	switch {
	case errors.Is(err, bridge.ErrQuota):
		// Temporary: the sending server keeps the mail and tries again
		// later, when the sender's quota has room (quota.go).
		return smtpErr(451, smtp.EnhancedCode{4, 7, 1}, "%s", strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": "))
	case errors.Is(err, bridge.ErrInvalid):
		return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "%v", err)
	case err != nil:
		s.c.opt.Log.Error("email: cannot store a mail", "from", s.from, "err", err)
		return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "cannot store the message now, try again later: %v", err)
	}
	s.c.opt.Log.Info("email: mail accepted", "msg_id", id, "from", s.from, "to", strings.Join(s.to, ","), "ignored", strings.Join(b.Ignored, "; "))
	s.c.crash("email-after-commit-before-250")
	return nil
}

// requestID is the send request id of a mail: derived from its
// Message-ID and the phones it goes to, so that the same mail sent again
// is stored once (a relay that splits the recipients of one mail over
// several transactions gets one message per transaction). A mail without
// a Message-ID is known by its sender, Date, phones and text; one without
// a Date either gets a new id.
func requestID(msgID, date, from string, to []string, text string) string {
	key := "message-id\x00" + msgID
	if msgID == "" {
		if date == "" {
			return ""
		}
		key = "date\x00" + from + "\x00" + date + "\x00" + text
	}
	phones := slices.Clone(to)
	slices.Sort(phones)
	sum := sha256.Sum256([]byte(key + "\x00" + strings.Join(phones, ",")))
	return "email-" + hex.EncodeToString(sum[:16])
}

// allowed reports whether addr may send: an address of Allow, or one in
// the domain of a "*@domain" entry.
func (c *Connector) allowed(addr string) bool {
	for _, a := range c.opt.Allow {
		if ok, _ := path.Match(strings.ToLower(a), addr); ok {
			return true
		}
	}
	return false
}

// crash kills the process at a named point when CrashAt names it.
func (c *Connector) crash(point string) {
	if c.opt.CrashAt == point {
		c.opt.Log.Warn("crashing on purpose", "point", point)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

// maxSubject bounds the subject kept of a mail, in characters.
const maxSubject = 200

// subject is a mail's Subject header as text: encoded words (RFC 2047)
// decoded, control characters and runs of white space made one space,
// at most maxSubject characters.
func subject(h string) string {
	h = decodeWords(h)
	h = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == controlMark {
			return ' '
		}
		return r
	}, h)
	h = strings.Join(strings.Fields(h), " ")
	if rs := []rune(h); len(rs) > maxSubject {
		h = string(rs[:maxSubject])
	}
	return h
}

// prefixed is the text of an SMS with the mail's subject before it, on
// its own line (a phone shows the first line as the message's preview):
// the subject without its "Re:"s, or the text alone when the subject is
// empty, or the subject alone when the text is.
func prefixed(subj, text string) string {
	subj = stripRe(subj)
	switch {
	case subj == "":
		return text
	case text == "":
		return subj
	}
	return subj + "\n" + text
}

// maxRefs bounds the References chain of a conversation.
const maxRefs = 10

// addRef appends id to a References chain, keeping the last maxRefs.
func addRef(refs, id string) string {
	f := msgIDs(refs)
	if ids := msgIDs(id); len(ids) > 0 {
		f = append(f, ids[0])
	}
	if len(f) > maxRefs {
		f = f[len(f)-maxRefs:]
	}
	return strings.Join(f, " ")
}

// msgIDPattern is one message id as headers carry it: <left@right>, no space.
var msgIDPattern = regexp.MustCompile(`<[^<>\s]+>`)

// msgIDs are the message ids in a header's value; anything else in it (a
// folded line that smuggles another header, comments) is dropped, so
// what Outpost writes back into In-Reply-To and References is ids alone.
func msgIDs(v string) []string { return msgIDPattern.FindAllString(v, -1) }

// firstID is the first message id of a header's value, or "".
func firstID(v string) string {
	if ids := msgIDs(v); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// remember stores, for each phone a mail went to, who mailed it, the
// mail's Message-ID and its subject: the phone's answers go back to that
// address, as answers to that mail.
func (c *Connector) remember(tx *store.Tx, from string, phones []string, msgID, refs, subject string) error {
	msgID = firstID(msgID)
	for _, p := range phones {
		conv := store.Conversation{Phone: p, Email: from, LastMsgID: msgID, Refs: addRef(refs, msgID), Subject: subject,
			ExpiresAt: tx.Now().Add(c.opt.ConversationTTL)}
		if err := tx.SetConversation(conv); err != nil {
			return err
		}
	}
	return nil
}

// answer runs in the transaction that stores an inbound SMS: from a
// phone in a conversation, it is delivered to the address that mailed
// it, as a mail that answers the conversation's last one.
func (c *Connector) answer(tx *store.Tx, m *store.Message) error {
	if m.Direction != store.In || m.FormID != "" || m.Text == nil {
		return nil
	}
	conv, err := tx.Conversation(m.Peer)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	mailID := fmt.Sprintf("<%s@%s>", m.ID, c.opt.Domain)
	if err := tx.SetEmailThread(m.ID, store.EmailThread{MailID: mailID, InReplyTo: conv.LastMsgID, Refs: conv.Refs, Subject: conv.Subject}); err != nil {
		return err
	}
	conv.LastMsgID, conv.Refs = mailID, addRef(conv.Refs, mailID)
	conv.ExpiresAt = tx.Now().Add(c.opt.ConversationTTL)
	if err := tx.SetConversation(conv); err != nil {
		return err
	}
	d := &store.Delivery{MessageID: m.ID, Connector: "email", Recipient: conv.Email}
	if err := tx.InsertDelivery(d, "answer to "+conv.Email+" (email conversation)"); err != nil {
		return err
	}
	tx.AfterCommit(func() { c.router.Wake("email") })
	return nil
}

// decodeWords decodes the encoded words (RFC 2047) of a header's text in
// any charset toUTF8 reads; text it cannot decode is left as it is.
func decodeWords(h string) string {
	dec := mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
		raw, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		text, err := toUTF8(raw, charset)
		return strings.NewReader(text), err
	}}
	if d, err := dec.DecodeHeader(h); err == nil {
		return d
	}
	return h
}
