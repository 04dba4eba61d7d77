package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// Deliver implements bridge.Connector: it mails an inbound SMS to the
// address of its conversation (d.Recipient) through the relay. The relay's
// 250 is delivered; a 4xx answer or no answer is an outage (the mail
// waits, its attempts not used up); a 5xx fails it with the answer.
func (c *Connector) Deliver(ctx context.Context, m store.Message, d store.Delivery) (bridge.Outcome, error) {
	if c.opt.SMTP == "" {
		return bridge.Outcome{}, bridge.Permanent(errors.New("no relay to send mail through (email.smtp)"))
	}
	if m.Text == nil {
		return bridge.Outcome{}, bridge.Permanent(fmt.Errorf("message %s has no text to mail", m.ID))
	}
	var th store.EmailThread
	err := c.router.Store.View(ctx, func(tx *store.Tx) (err error) { th, err = tx.EmailThread(m.ID); return })
	if errors.Is(err, store.ErrNotFound) {
		th = store.EmailThread{MailID: fmt.Sprintf("<%s@%s>", m.ID, c.opt.Domain)}
	} else if err != nil {
		return bridge.Outcome{}, err
	}
	body := c.compose(m, d.Recipient, th)
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	answer, err := c.send(ctx, c.from(m), d.Recipient, body)
	if err != nil {
		var te *textproto.Error
		switch {
		case errors.As(err, &te) && te.Code >= 500:
			return bridge.Outcome{}, bridge.Permanent(fmt.Errorf("relay refused the mail: %d %s", te.Code, te.Msg))
		case errors.As(err, &te):
			return bridge.Outcome{}, bridge.Outage(fmt.Errorf("relay cannot take the mail now: %d %s", te.Code, te.Msg))
		}
		return bridge.Outcome{}, bridge.Outage(fmt.Errorf("relay %s: %w", bridge.RedactURLs(c.opt.SMTP), err))
	}
	return bridge.Outcome{State: store.Delivered, Detail: fmt.Sprintf("mailed to %s as %s: %s", d.Recipient, th.MailID, answer)}, nil
}

// sender is the address a phone's mail comes from.
func (c *Connector) sender(phone string) string { return phone + "@" + c.opt.Domain }

// from is the address m's mail comes from: the phone's for an SMS that
// came in (a reply goes back to it through the SMTP server), Outpost's
// own for a message sent to a mailto: address.
func (c *Connector) from(m store.Message) string {
	if m.Direction == store.In {
		return c.sender(m.Peer)
	}
	return "outpost@" + c.opt.Domain
}

// Scheme: the connector delivers to mailto: addresses (a send request to
// "mailto:ops@example.org" is mailed there).
func (c *Connector) Scheme() string { return bridge.SchemeMailto }

// Validate refuses, before anything is stored, a send request whose
// content cannot be mailed: data (data_hex) has no text.
func (c *Connector) Validate(req *bridge.SendRequest) error {
	if req.Data != nil {
		return errors.New("a mail carries text: data_hex cannot be sent to a mailto: address")
	}
	return nil
}

// ValidateAddress refuses, before anything is stored, a mail address
// when no relay is configured to send it through.
func (c *Connector) ValidateAddress(addr string) error {
	if c.opt.SMTP == "" {
		return fmt.Errorf("no relay to send mail through: set email.smtp")
	}
	return nil
}

// compose writes the mail an SMS goes out as.
func (c *Connector) compose(m store.Message, to string, th store.EmailThread) []byte {
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	if m.Direction == store.In {
		h("From", fmt.Sprintf("%q <%s>", m.Peer, c.from(m)))
		h("Subject", mime.QEncoding.Encode("utf-8", answerSubject(th.Subject, c.smsSubject(m))))
	} else if isNotice(m) {
		// A notice of a failed SMS, to the mail's sender: marked as
		// automatic (RFC 3834), so that autoresponders do not answer it.
		h("From", fmt.Sprintf("%q <%s>", "Outpost", c.from(m)))
		h("Subject", mime.QEncoding.Encode("utf-8", th.Subject))
		h("Auto-Submitted", "auto-replied")
	} else {
		via := m.Channel
		if via == "" {
			via = m.Source
		}
		h("From", fmt.Sprintf("%q <%s>", "Outpost", c.from(m)))
		h("Subject", mime.QEncoding.Encode("utf-8", "Message via Outpost ("+via+")"))
	}
	h("To", "<"+to+">")
	date := m.CreatedAt
	if date.IsZero() {
		date = time.Now()
	}
	h("Date", date.Format(time.RFC1123Z))
	h("Message-ID", th.MailID)
	if th.InReplyTo != "" {
		h("In-Reply-To", th.InReplyTo)
	}
	if th.Refs != "" {
		h("References", th.Refs)
	}
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	h("X-Outpost-Message-Id", m.ID)
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(*m.Text, "\r\n", "\n"), "\n", "\r\n")))
	qp.Close()
	b.WriteString("\r\n")
	return b.Bytes()
}

// smsSubject is the subject of m's mail when it answers no mail with a
// subject: Options.SubjectTemplate with its placeholders filled in.
func (c *Connector) smsSubject(m store.Message) string {
	return strings.NewReplacer("{from}", m.Peer, "{number}", m.Peer, "{modem}", m.Modem).Replace(c.opt.SubjectTemplate)
}

// answerSubject is the subject of a phone's answer: "Re: " and the
// subject of the mail it answers, with the "Re:"s that subject already
// has taken off (one "Re:", as mail clients write it, so that they
// thread it), or none (fallback: "SMS from <phone>" by default) when that
// mail had none.
func answerSubject(subject, none string) string {
	s := stripRe(subject)
	if s == "" {
		return none
	}
	return "Re: " + s
}

// stripRe is a subject without the "Re:"s (and German "AW:", Nordic
// "SV:", Dutch "Antw:") mail clients put before it.
func stripRe(subject string) string {
	s := strings.TrimSpace(subject)
	for {
		l := strings.ToLower(s)
		switch {
		case strings.HasPrefix(l, "re:"), strings.HasPrefix(l, "aw:"), strings.HasPrefix(l, "sv:"):
			s = strings.TrimSpace(s[3:])
		case strings.HasPrefix(l, "antw:"):
			s = strings.TrimSpace(s[5:])
		default:
			return s
		}
	}
}

// send hands one mail to the relay and returns what it answered. A
// *textproto.Error is the relay's own answer (its code says 4xx or 5xx);
// any other error means it could not be reached or did not answer.
func (c *Connector) send(ctx context.Context, from, to string, body []byte) (string, error) {
	scheme, hostport, _ := strings.Cut(c.opt.SMTP, "://")
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", bridge.Permanent(fmt.Errorf("email.smtp %q: %v", c.opt.SMTP, err))
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	tlsConf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, RootCAs: c.roots}
	if scheme == "smtps" {
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return "", err
		}
		conn = tc
	}
	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		return "", err
	}
	defer cl.Close()
	if err := cl.Hello(c.opt.Domain); err != nil {
		return "", err
	}
	secure := scheme == "smtps"
	if !secure {
		if ok, _ := cl.Extension("STARTTLS"); ok {
			if err := cl.StartTLS(tlsConf); err != nil {
				return "", err
			}
			secure = true
		} else if c.opt.RequireTLS {
			return "", fmt.Errorf("relay %s offers no STARTTLS and email.require_tls is set", hostport)
		}
	}
	if c.opt.User != "" {
		if ok, _ := cl.Extension("AUTH"); ok {
			if err := cl.Auth(plainAuth{user: c.opt.User, pass: c.opt.Password, secure: secure, host: host}); err != nil {
				// Refused credentials are the gateway's problem, not
				// the mail's: not an answer that fails it.
				return "", fmt.Errorf("relay refused email.user %q: %v", c.opt.User, err)
			}
		}
	}
	if err := cl.Mail(from); err != nil {
		return "", err
	}
	if err := cl.Rcpt(to); err != nil {
		return "", err
	}
	w, err := cl.Data()
	if err != nil {
		return "", err
	}
	if _, err := w.Write(body); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	cl.Quit()
	return "250 accepted by " + hostport, nil
}

// plainAuth is AUTH PLAIN, sent only over TLS or to a relay on loopback
// (net/smtp's PlainAuth says the same, but does not know about a
// connection made TLS before the client was made).
type plainAuth struct {
	user, pass, host string
	secure           bool
}

func (a plainAuth) Start(si *smtp.ServerInfo) (string, []byte, error) {
	ip := net.ParseIP(a.host)
	if !a.secure && !si.TLS && a.host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", nil, errors.New("will not send the password over a connection without TLS")
	}
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected server challenge")
	}
	return nil, nil
}
