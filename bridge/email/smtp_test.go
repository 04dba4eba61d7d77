package email

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	bsms "github.com/outpost-sms/outpost/bridge/sms"
	"github.com/outpost-sms/outpost/store"
)

// mailEnv is the email connector's SMTP server on 127.0.0.1:0 in front of
// a running router on a SQLite file, with the SMS connector (no modem:
// its SMS wait, queued) counting the parts of texts.
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
	r.RetryMin, r.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
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

// settle moves the delivery of message id to number to state, as a
// status report or the expiry do, in one transaction.
func (e *mailEnv) settle(t *testing.T, id, number, state, detail string) {
	t.Helper()
	if err := e.st.Update(context.Background(), func(tx *store.Tx) error {
		ds, err := tx.Deliveries(id)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.Recipient == number {
				_, err := e.router.Transition(tx, d.ID, store.Transition{State: state, Detail: detail, LastError: detail})
				return err
			}
		}
		return fmt.Errorf("%s has no delivery to %s", id, number)
	}); err != nil {
		t.Fatal(err)
	}
}

// decoded is a mail as the relay took it: its headers, and its body
// decoded (quoted-printable).
func decoded(t *testing.T, data string) (*mail.Message, string) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	return m, strings.ReplaceAll(string(body), "\r\n", "\n")
}

// TestFailedSMSNotice: an SMS of a mail that fails (or expires) for a
// number is noticed to the mail's sender once: one mail, through the
// relay, from Outpost, threaded on the mail, naming the number, the
// reason from the history and the message's id; a retry that fails
// again notices nothing more, a delivered SMS nothing, an SMS that did
// not come by mail nothing; a notice whose mail fails makes no other.
func TestFailedSMSNotice(t *testing.T) {
	relay, _ := startRelay(t, false, false)
	e := newMailEnv(t, Options{SMTP: "smtp://" + relay.addr}, map[string][]string{"ward": {"+15555550101", "+15555550102"}})
	changes := make(chan bridge.StatusChange, 1000)
	e.router.OnStatus(func(ch bridge.StatusChange) { changes <- ch })
	waitChange := func(id, state string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ch := <-changes:
				if ch.MessageID == id && ch.State == state {
					return
				}
			case <-deadline:
				t.Fatalf("%s did not become %s in 10s", id, state)
			}
		}
	}
	if err := e.mail(t, []string{"+15555550100@sms.example.org", "group-ward@sms.example.org"},
		"Message-Id: <n1@example.org>\r\nReferences: <r0@example.org>\r\nSubject: Re: stock\r\n", "How many doses are left?"); err != nil {
		t.Fatal(err)
	}
	v := e.stored(t, "<n1@example.org>", "+15555550100", "group:ward")
	e.settle(t, v.ID, "+15555550101", store.Failed, "part 1/1: not obtainable (TP-ST 67)")
	m, body := decoded(t, relay.waitMails(t, 1)[0].data)
	got := relay.mails()[0]
	if got.from != "outpost@sms.example.org" || got.to != "nurse@example.org" {
		t.Errorf("envelope %s → %s", got.from, got.to)
	}
	for k, want := range map[string]string{
		"Subject":        "Re: stock (SMS to +15555550101 failed)",
		"In-Reply-To":    "<n1@example.org>",
		"References":     "<r0@example.org> <n1@example.org>",
		"Auto-Submitted": "auto-replied",
		"From":           `"Outpost" <outpost@sms.example.org>`,
	} {
		if h := m.Header.Get(k); h != want {
			t.Errorf("%s: %q, want %q", k, h, want)
		}
	}
	for _, want := range []string{"Your SMS to +15555550101 could not be delivered.", "Reason: part 1/1: not obtainable (TP-ST 67)",
		"Message id: " + v.ID, "Text: How many doses are left?"} {
		if !strings.Contains(body, want) {
			t.Errorf("the notice lacks %q:\n%s", want, body)
		}
	}

	// Retried, it fails again: no second notice. The other number of
	// the group expires: its own notice. The first is delivered: none.
	e.settle(t, v.ID, "+15555550101", store.Queued, "retried by test")
	e.settle(t, v.ID, "+15555550101", store.Failed, "part 1/1: not obtainable (TP-ST 67)")
	e.settle(t, v.ID, "+15555550102", store.Expired, "not sent: expired at 2026-12-02T10:00:00Z")
	e.settle(t, v.ID, "+15555550100", store.Delivered, "part 1/1: received by the recipient (TP-ST 0)")
	waitChange(noticeID(v.ID, "+15555550102"), store.Delivered)
	if got := relay.mails(); len(got) != 2 || !strings.Contains(got[1].data, "Subject: Re: stock (SMS to +15555550102 expired)") ||
		!strings.Contains(got[1].data, "expired before it could be sent") {
		t.Fatalf("the relay took %+v", got)
	}
	after, _ := e.router.Message(context.Background(), v.ID)
	notices := 0
	for _, ev := range after.Events {
		if strings.HasPrefix(ev.Detail, "notice notice-") {
			notices++
		}
	}
	if notices != 2 {
		t.Errorf("%d notices in the history, want 2: %+v", notices, after.Events)
	}
	if _, err := e.router.Message(context.Background(), noticeID(v.ID, "+15555550100")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a notice of a delivered SMS: %v", err)
	}

	// An SMS that did not come by mail: no notice.
	id, err := e.router.Submit(context.Background(), bridge.SendRequest{To: []string{"+15555550103"}, Text: "from the CLI", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	e.settle(t, id, "+15555550103", store.Failed, "part 1/1: not obtainable (TP-ST 67)")
	if _, err := e.router.Message(context.Background(), noticeID(id, "+15555550103")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a notice of an SMS sent by the CLI: %v", err)
	}

	// A notice the relay refuses fails, and makes no notice of its own.
	relay.mu.Lock()
	relay.refuse = "nurse@example.org: mailbox full"
	relay.mu.Unlock()
	if err := e.mail(t, []string{"+15555550104@sms.example.org"}, "Message-Id: <n2@example.org>\r\n", "second"); err != nil {
		t.Fatal(err)
	}
	v2 := e.stored(t, "<n2@example.org>", "+15555550104")
	e.settle(t, v2.ID, "+15555550104", store.Failed, "part 1/1: not obtainable (TP-ST 67)")
	n := noticeID(v2.ID, "+15555550104")
	waitChange(n, store.Failed)
	nv, err := e.router.Message(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	if len(nv.Deliveries) != 1 || nv.Deliveries[0].Connector != "email" || !strings.Contains(nv.Deliveries[0].LastError, "mailbox full") {
		t.Errorf("the notice's delivery: %+v", nv.Deliveries)
	}
	for _, ev := range nv.Events {
		if strings.HasPrefix(ev.Detail, "notice ") {
			t.Errorf("a notice of a notice: %+v", ev)
		}
	}
	if _, err := e.router.Message(context.Background(), noticeID(n, "nurse@example.org")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a notice of a notice: %v", err)
	}
}

// TestMailToNumberSpellings: a number in the address is read as a send
// reads it: 0015555550100@ (00, the international prefix) and
// 15555550100@ are +15555550100 (the first was refused as
// "+0015555550100").
func TestMailToNumberSpellings(t *testing.T) {
	e := newMailEnv(t, Options{MaxParts: 1}, nil)
	for i, local := range []string{"0015555550100", "15555550100", "+15555550100"} {
		id := fmt.Sprintf("<n%d@example.org>", i)
		if err := e.mail(t, []string{local + "@sms.example.org"}, "Message-Id: "+id+"\r\n", "hi"); err != nil {
			t.Fatalf("mail to %s@: %v", local, err)
		}
		v := e.stored(t, id, "+15555550100")
		if len(v.Deliveries) != 1 || v.Deliveries[0].Recipient != "+15555550100" {
			t.Errorf("mail to %s@: deliveries %+v", local, v.Deliveries)
		}
	}
}
