package email

import (
	"context"
	"mime"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
	"github.com/outpost-sms/outpost/store/clock"
)

func TestCutReply(t *testing.T) {
	for _, c := range []struct{ in, want, said string }{
		{"Hello\r\n\r\n> quoted\r\n> more\r\nBye", "Hello\n\nBye", "2 quoted lines cut"},
		{"Yes.\n\nOn Mon, 30 Nov 2026 at 10:00, Bob <bob@example.org> wrote:\n> old\n", "Yes.", "quoted reply cut"},
		{"Yes.\nOn Mon, 30 Nov 2026 at 10:00, Bob\n<bob@example.org> wrote:\n> old\n", "Yes.", "quoted reply cut"},
		{"Yes.\n-----Original Message-----\nFrom: x", "Yes.", "quoted reply cut"},
		{"Call me\n-- \nDr. Amina\n+254 700", "Call me", "signature cut (2 lines)"},
		{"Only text", "Only text", ""},
	} {
		got, said := cutReply(c.in)
		if got != c.want || (c.said != "" && !strings.Contains(strings.Join(said, "; "), c.said)) || (c.said == "" && len(said) > 0) {
			t.Errorf("cutReply(%q) = %q, %q; want %q, %q", c.in, got, said, c.want, c.said)
		}
	}
}

func TestHTMLToText(t *testing.T) {
	in := "<html><head><title>x</title><style>p{}</style></head><body><p>Stock&nbsp;&amp; <b>supplies</b></p><div>line&lt;2&gt;<br>three</div><script>evil()</script><blockquote>old</blockquote></body></html>"
	if got, want := htmlToText(in), "Stock & supplies\nline<2>\nthree"; got != want {
		t.Errorf("htmlToText = %q, want %q", got, want)
	}
}

func TestReadBody(t *testing.T) {
	for _, c := range []struct{ name, mail, want, ignored, err string }{
		{"latin1 quoted-printable", "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 ouvert\r\n", "Café ouvert", "", ""},
		{"base64 utf-8", "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8g\r\n8J+Mjw==\r\n", "Hello 🌏", "", ""},
		{"alternative prefers plain", "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n", "plain", "", ""},
		{"attachment", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"x.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--b--\r\n", "see attached", `attachment "x.png" (image/png, 6 bytes) ignored`, ""},
		{"attachment name as RFC 2047 encoded words (what most mailers send)", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"=?UTF-8?B?UmFwcG9ydF/DqXTDqS5wZGY=?=\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--b--\r\n", "see attached", `attachment "Rapport_été.pdf" (application/pdf, 6 bytes) ignored`, ""},
		{"attachment name as encoded words in Latin-1, in the Content-Type", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: image/png; name=\"=?iso-8859-1?Q?r=E9sum=E9.png?=\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--b--\r\n", "see attached", `attachment "résumé.png" (image/png, 6 bytes) ignored`, ""},
		{"attachment name in RFC 2231 form", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rate.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--b--\r\n", "see attached", `attachment "€ rate.png" (image/png, 6 bytes) ignored`, ""},
		{"unknown charset", "Content-Type: text/plain; charset=koi8-r\r\n\r\nx\r\n", "", "", `charset "koi8-r" is not supported`},
		{"windows-1252 8bit", "Content-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\x80 \x93q\x94 caf\xe9 it\x92s\r\n", "€ “q” café it’s", "", ""},
		{"iso-8859-1 label, Windows-1252 text", "Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=80 =93quoted=94\r\n", "€ “quoted”", "", ""},
		{"control character in an attachment's name", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: image/png; name=\"x\x01.png\"\r\nContent-Disposition: attachment; filename=\"x\x1b.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0K\r\n--b--\r\n", "see attached", "attachment \"x\ufffd.png\" (image/png, 6 bytes) ignored (control characters in its name are shown as \ufffd)", ""},
		{"control character in a nested part's header", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\nContent-Type: text/plain; x-note=\"a\x7fb\"\r\n\r\nnested\r\n--c--\r\n--b--\r\n", "nested", "", ""},
		{"control character in the mail's subject", "Subject: a\x01b\r\n\r\nplain text\r\n", "plain text", "", ""},
		{"us-ascii with 8-bit bytes", "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9\r\n", "", "", "not valid us-ascii"},
	} {
		m, err := parseMail([]byte("From: a@example.org\r\n" + c.mail))
		if err != nil {
			t.Fatal(err)
		}
		b, err := readBody(m)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case b.Text != c.want || !strings.Contains(strings.Join(b.Ignored, "; "), c.ignored):
			t.Errorf("%s: %q %q, want %q %q", c.name, b.Text, b.Ignored, c.want, c.ignored)
		}
	}
}

// skewed is the system clock with a wall time the test moves.
type skewed struct{ off atomic.Int64 }

func (s *skewed) Now() time.Time         { return time.Now().Add(time.Duration(s.off.Load())) }
func (s *skewed) Elapsed() time.Duration { return clock.Elapsed() }

// TestConversationExpires: a phone's SMS goes by mail to the address that
// mailed it while the conversation lasts (conversation_ttl after the
// last mail or answer), not after.
func TestConversationExpires(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := &skewed{}
	st.SetClock(clk)
	r := bridge.New(st, nil)
	c, err := New(Options{Domain: "sms.example.org", SMTP: "smtp://127.0.0.1:1", ConversationTTL: time.Hour}, r)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Update(ctx, func(tx *store.Tx) error {
		return c.remember(tx, "nurse@example.org", []string{"+15555550100"}, "<a@example.org>", "", "")
	}); err != nil {
		t.Fatal(err)
	}
	inbound := func(text string) []store.Delivery {
		t.Helper()
		var ds []store.Delivery
		if err := st.Update(ctx, func(tx *store.Tx) error {
			m := &store.Message{Peer: "+15555550100", Text: &text, State: store.Complete}
			if err := r.StoreInbound(tx, m, "test"); err != nil {
				return err
			}
			ds, err = tx.Deliveries(m.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ds
	}
	ds := inbound("within the hour")
	if len(ds) != 1 || ds[0].Connector != "email" || ds[0].Recipient != "nurse@example.org" {
		t.Fatalf("deliveries %+v, want one to email nurse@example.org", ds)
	}
	clk.off.Store(int64(50 * time.Minute))
	if ds := inbound("still on"); len(ds) != 1 {
		t.Fatalf("50 minutes after the mail: %+v", ds)
	}
	clk.off.Store(int64(90 * time.Minute)) // the answer at 50 minutes renewed it
	if ds := inbound("renewed"); len(ds) != 1 {
		t.Fatalf("90 minutes after the mail, 40 after an answer: %+v", ds)
	}
	clk.off.Store(int64(3 * time.Hour))
	if ds := inbound("too late"); len(ds) != 0 {
		t.Fatalf("after the conversation expired: %+v", ds)
	}
}

// TestRequestID: the same mail sent again has the same id; one mail whose
// recipients a relay split over two transactions is two requests; a mail
// with neither Message-ID nor Date is never taken for another.
func TestRequestID(t *testing.T) {
	a := requestID("<m@x>", "", "n@example.org", []string{"+1555", "+1666"}, "t")
	if b := requestID("<m@x>", "Wed, 2 Dec 2026", "n@example.org", []string{"+1666", "+1555"}, "other"); a != b {
		t.Errorf("the same mail: %s, %s", a, b)
	}
	if b := requestID("<m@x>", "", "n@example.org", []string{"+1666"}, "t"); a == b {
		t.Error("split recipients share an id")
	}
	if err := bridge.CheckID(a); err != nil {
		t.Error(err)
	}
	d1 := requestID("", "Wed, 2 Dec 2026 10:00:00 +0000", "n@example.org", []string{"+1555"}, "OK")
	d2 := requestID("", "Wed, 2 Dec 2026 10:05:00 +0000", "n@example.org", []string{"+1555"}, "OK")
	if d1 == "" || d1 == d2 {
		t.Errorf("without Message-ID: %q %q", d1, d2)
	}
	if id := requestID("", "", "n@example.org", []string{"+1555"}, "OK"); id != "" {
		t.Errorf("without Message-ID and Date: %q", id)
	}
}

// Only message ids go back into In-Reply-To and References: a folded
// Message-ID that carries another header, or comments, are dropped.
func TestReferencesAreIDsAlone(t *testing.T) {
	got := addRef("<a@x> (comment)\r\n Bcc: folded@evil.org <b@y>", "<c@z>\r\n Bcc: x@evil.org")
	if got != "<a@x> <b@y> <c@z>" {
		t.Fatalf("references %q", got)
	}
	if got := addRef("", "no id at all"); got != "" {
		t.Fatalf("references %q", got)
	}
}

// The SMTP port holds at most maxConns connections at once; one more
// is accepted when one of them closes.
func TestSMTPConnectionsBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &limitListener{Listener: ln, slots: make(chan struct{}, 2)}
	defer l.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first := <-accepted
	<-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection accepted while two are open")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the third connection was not accepted after one closed")
	}
}

// A phone's answer is mailed with the subject "Re: <the mail's subject>",
// one "Re:" however many the mail had (mail clients thread on it); the
// subject is decoded (RFC 2047) and kept with the conversation.
func TestAnswerSubject(t *testing.T) {
	for _, c := range []struct{ header, want string }{
		{"Vaccine stock", "Re: Vaccine stock"},
		{"Re: Vaccine stock", "Re: Vaccine stock"},
		{"RE: re: Re:Vaccine stock", "Re: Vaccine stock"},
		{"AW: Impfstoff", "Re: Impfstoff"},
		{"Antw: Re: voorraad", "Re: voorraad"},
		{"=?utf-8?q?Re=3A_Stock_de_vaccins_=C3=A9puis=C3=A9?=", "Re: Stock de vaccins épuisé"},
		{"=?iso-8859-1?q?caf=E9?=", "Re: café"},
		{"a\tb\r\n c", "Re: a b c"},
		{"", "SMS from +15555550100"},
		{"Re:", "SMS from +15555550100"},
	} {
		if got := answerSubject(subject(c.header), "SMS from +15555550100"); got != c.want {
			t.Errorf("subject %q: answered as %q, want %q", c.header, got, c.want)
		}
	}

	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := bridge.New(st, nil)
	c, err := New(Options{Domain: "sms.example.org", SMTP: "smtp://127.0.0.1:1"}, r)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	text := "20 left"
	m := &store.Message{Peer: "+15555550100", Text: &text, State: store.Complete}
	var th store.EmailThread
	if err := st.Update(ctx, func(tx *store.Tx) error {
		if err := c.remember(tx, "nurse@example.org", []string{"+15555550100"}, "<a@example.org>", "", subject("Re: Re: Vaccine stock")); err != nil {
			return err
		}
		if err := r.StoreInbound(tx, m, "test"); err != nil {
			return err
		}
		th, err = tx.EmailThread(m.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	mail := string(c.compose(*m, "nurse@example.org", th))
	if !strings.Contains(mail, "\r\nSubject: Re: Vaccine stock\r\n") || !strings.Contains(mail, "In-Reply-To: <a@example.org>") {
		t.Errorf("the answer's mail:\n%s", mail)
	}
}

// The subject of a phone's SMS mailed when it answers no mail with a
// subject is Options.SubjectTemplate with {from}/{number} (the phone's
// number) and {modem} filled in, encoded when it is not ASCII; an answer
// to a mail with a subject stays "Re: <subject>".
func TestSubjectTemplate(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	text := "20 left"
	m := store.Message{ID: "m1", Direction: store.In, Peer: "+15555550100", Modem: "sim0", Text: &text, CreatedAt: time.Now()}
	for _, c := range []struct{ template, answers, want string }{
		{"", "", "SMS from +15555550100"},
		{"Texto de {from} ({modem})", "", "Texto de +15555550100 (sim0)"},
		{"{number} a écrit", "", "+15555550100 a écrit"},
		{"Texto de {from}", "stock", "Re: stock"},
	} {
		conn, err := New(Options{Domain: "sms.example.org", SMTP: "smtp://127.0.0.1:1", SubjectTemplate: c.template}, bridge.New(st, nil))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := parseMail(conn.compose(m, "nurse@example.org", store.EmailThread{MailID: "<m1@sms.example.org>", Subject: c.answers}))
		if err != nil {
			t.Fatal(err)
		}
		var dec mime.WordDecoder
		got, err := dec.DecodeHeader(msg.Header.Get("Subject"))
		if err != nil || got != c.want {
			t.Errorf("template %q, answering %q: subject %q (%v), want %q", c.template, c.answers, got, err, c.want)
		}
	}
}
