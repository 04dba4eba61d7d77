package email

import (
	"context"
	"errors"
	"net/smtp"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/bridge"
	bsms "github.com/outpost-sms/outpost/bridge/sms"
	"github.com/outpost-sms/outpost/store"
)

// mailEnv is the email connector's SMTP server on 127.0.0.1:0 in front of
// a router on a SQLite file, with the SMS connector (no modem: what is
// stored is not sent) counting the parts of texts.
type mailEnv struct {
	st     *store.Store
	router *bridge.Router
	c      *Connector
}

func newMailEnv(t *testing.T, opt Options, groups map[string][]string) *mailEnv {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := bridge.New(st, nil)
	r.Groups = groups
	sms := bsms.New(r, nil)
	r.Add(sms)
	opt.Listen, opt.Domain, opt.Allow, opt.Parts = "127.0.0.1:0", "sms.example.org", []string{"*@example.org"}, sms.Parts
	c, err := New(opt, r)
	if err != nil {
		t.Fatal(err)
	}
	r.Add(c)
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, r); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &mailEnv{st: st, router: r, c: c}
}

// mail sends one mail from nurse@example.org to rcpts with the headers
// and body given and returns the server's refusal (nil: 250).
func (e *mailEnv) mail(t *testing.T, rcpts []string, headers, body string) error {
	t.Helper()
	cl, err := smtp.Dial(e.c.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Mail("nurse@example.org"); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := cl.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	w.Write([]byte("From: nurse@example.org\r\n" + headers + "\r\n" + body))
	if err := w.Close(); err != nil {
		return err
	}
	return cl.Quit()
}

// stored is the message a mail with this Message-ID to these recipients
// (numbers, group:<name>) was stored as.
func (e *mailEnv) stored(t *testing.T, msgID string, to ...string) bridge.MessageView {
	t.Helper()
	v, err := e.router.Message(context.Background(), requestID(msgID, "", "", to, ""))
	if err != nil {
		t.Fatalf("the mail %s was not stored: %v", msgID, err)
	}
	return v
}

// refused is the server's refusal: its code and text (0, "": none).
func refused(err error) (int, string) {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code, te.Msg
	}
	return 0, ""
}

// refusedWith reports whether err is a refusal with code whose text
// holds want.
func refusedWith(err error, code int, want string) bool {
	c, msg := refused(err)
	return c == code && strings.Contains(msg, want)
}

// TestMailToGroup: mail to group-<name>@domain sends one SMS to each of
// the group's numbers; an unknown group is refused at RCPT with a 550
// that names it, and nothing is stored; the members' answers come back by
// mail (a conversation with each).
func TestMailToGroup(t *testing.T) {
	e := newMailEnv(t, Options{MaxParts: 1}, map[string][]string{"nurses": {"+15555550100", "+15555550101"}})
	cl, err := smtp.Dial(e.c.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Mail("nurse@example.org"); err != nil {
		t.Fatal(err)
	}
	err = cl.Rcpt("group-doctors@sms.example.org")
	if !refusedWith(err, 550, `unknown group "doctors"`) {
		t.Fatalf("RCPT to an unknown group: %v", err)
	}
	if err := cl.Rcpt("group-bad/name@sms.example.org"); !refusedWith(err, 550, "is not a group's address") {
		t.Fatalf("RCPT to a group with a bad name: %v", err)
	}
	cl.Quit()

	if err := e.mail(t, []string{"group-nurses@sms.example.org"}, "Message-Id: <g1@example.org>\r\n", "Shift change at 6"); err != nil {
		t.Fatalf("mail to a group: %v", err)
	}
	v := e.stored(t, "<g1@example.org>", "group:nurses")
	var to []string
	for _, d := range v.Deliveries {
		to = append(to, d.Connector+" "+d.Recipient)
	}
	if strings.Join(to, ",") != "sms +15555550100,sms +15555550101" || v.Text == nil || *v.Text != "Shift change at 6" {
		t.Fatalf("deliveries %v, text %v", to, v.Text)
	}
	if !strings.Contains(v.Events[0].Detail, "group nurses: 2 numbers") {
		t.Errorf("history: %+v", v.Events)
	}
	for _, p := range []string{"+15555550100", "+15555550101"} {
		if err := e.st.View(context.Background(), func(tx *store.Tx) error {
			c, err := tx.Conversation(p)
			if err == nil && c.Email != "nurse@example.org" {
				t.Errorf("conversation of %s with %s", p, c.Email)
			}
			return err
		}); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	// max_parts counts for every number of the group.
	err = e.mail(t, []string{"group-nurses@sms.example.org"}, "Message-Id: <g2@example.org>\r\n", strings.Repeat("long ", 40))
	if !refusedWith(err, 554, "text too long") {
		t.Fatalf("a long text to a group: %v", err)
	}
}

// TestSubjectPrefix: with email.subject = "prefix" the subject (its
// "Re:"s taken off) is the first line of the SMS, counted in max_parts;
// a mail with a subject and no text sends the subject. Without it the
// subject is not sent.
func TestSubjectPrefix(t *testing.T) {
	e := newMailEnv(t, Options{MaxParts: 1, SubjectPrefix: true}, nil)
	to := []string{"+15555550100@sms.example.org"}
	if err := e.mail(t, to, "Message-Id: <s1@example.org>\r\nSubject: Re: RE: Vaccine stock\r\n", "How many doses are left?"); err != nil {
		t.Fatal(err)
	}
	if v := e.stored(t, "<s1@example.org>", "+15555550100"); v.Text == nil || *v.Text != "Vaccine stock\nHow many doses are left?" {
		t.Errorf("text %q", *v.Text)
	}
	if err := e.mail(t, to, "Message-Id: <s2@example.org>\r\nSubject: =?utf-8?q?Caf=C3=A9_ouvert?=\r\n", ""); err != nil {
		t.Fatal(err)
	}
	if v := e.stored(t, "<s2@example.org>", "+15555550100"); v.Text == nil || *v.Text != "Café ouvert" {
		t.Errorf("subject alone: %q", *v.Text)
	}
	// 150 characters of text fit one part; with a 20-character subject
	// they do not.
	err := e.mail(t, to, "Message-Id: <s3@example.org>\r\nSubject: "+strings.Repeat("s", 20)+"\r\n", strings.Repeat("t", 150))
	if !refusedWith(err, 554, "171 characters, the subject included") {
		t.Fatalf("subject counted in max_parts: %v", err)
	}
	if err := e.mail(t, to, "Message-Id: <s4@example.org>\r\n", ""); !refusedWith(err, 554, "no subject and no text") {
		t.Fatalf("no subject, no text: %v", err)
	}

	e = newMailEnv(t, Options{MaxParts: 1}, nil)
	if err := e.mail(t, to, "Message-Id: <s5@example.org>\r\nSubject: Vaccine stock\r\n", "How many doses are left?"); err != nil {
		t.Fatal(err)
	}
	if v := e.stored(t, "<s5@example.org>", "+15555550100"); v.Text == nil || *v.Text != "How many doses are left?" {
		t.Errorf("subject ignored: %q", *v.Text)
	}
}
