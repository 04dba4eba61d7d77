package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// needTool is the path of a reference tool: the test fails without it
// when OUTPOST_REQUIRE_TOOLS is set (CI), and is skipped otherwise.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("OUTPOST_REQUIRE_TOOLS") != "" {
			t.Fatalf("%s is not installed (scripts/test.sh installs it)", name)
		}
		t.Skipf("%s is not installed; scripts/test.sh installs it", name)
	}
	return p
}

// emailGateway is a gateway on the in-process simulated modem with the
// email connector's SMTP server on a port of its own; extra goes into
// its [email] section.
func emailGateway(t *testing.T, extra string) (*gateway, string) {
	smtpAddr := freePort(t)
	g := newGatewayWith(t, "", fmt.Sprintf("[email]\nlisten = %q\ndomain = \"sms.example.org\"\nallow = [\"*@example.org\", \"ops@ngo.org\"]\n%s", smtpAddr, extra))
	return g, smtpAddr
}

// swaks mails through the reference client and returns its transcript and
// exit code (0: the server took the mail).
func swaks(t *testing.T, server string, args ...string) (string, int) {
	t.Helper()
	bin := needTool(t, "swaks")
	// swaks reads an argument that starts with "+" as an option, so the
	// numbers it mails are written without it (15555550100@…, taken as
	// +15555550100); the Go client below mails +15555550100@… itself.
	cmd := exec.Command(bin, append([]string{"--server", server, "--timeout", "20", "--helo", "test.example.org"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

// mailID is the id a mail with this Message-ID to these recipients
// (numbers with their "+", group:<name>; none: +15555550100 alone) is
// stored under.
func mailID(msgID string, to ...string) string {
	if len(to) == 0 {
		to = []string{"+15555550100"}
	}
	to = slices.Sorted(slices.Values(to))
	sum := sha256.Sum256([]byte("message-id\x00" + msgID + "\x00" + strings.Join(to, ",")))
	return "email-" + hex.EncodeToString(sum[:16])
}

// TestEmailToSMS: a mail from an allowed sender to <number>@domain goes
// out as one SMS whose text is the mail's own text: the subject, the
// quoted reply, the signature and the attachment are not sent, and the
// history says what was left out.
func TestEmailToSMS(t *testing.T) {
	g, addr := emailGateway(t, "")
	g.start()
	dir := t.TempDir()
	att := filepath.Join(dir, "report.pdf")
	os.WriteFile(att, []byte("%PDF-1.4 not really"), 0o600)
	body := "Please confirm the vaccine delivery.\n\nThanks\n-- \nDr. Amina\nNGO field office\n\nOn Mon, 30 Nov 2026 at 10:00, Bob <bob@example.org> wrote:\n> old text\n"
	out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "15555550100@sms.example.org",
		"--header", "Subject: not sent", "--header", "Message-Id: <first@example.org>", "--body", body,
		"--attach-type", "application/pdf", "--attach-name", "report.pdf", "--attach", "@"+att)
	if code != 0 || !strings.Contains(out, "<-  250") {
		t.Fatalf("mail refused: exit %d\n%s", code, out)
	}
	e := g.waitEcho("Please confirm the vaccine delivery.\n\nThanks")
	if e.Text == nil || strings.Contains(*e.Text, "Amina") || strings.Contains(*e.Text, "not sent") {
		t.Errorf("echo %q", *e.Text)
	}
	s := g.waitDelivered(mailID("<first@example.org>"))
	out, _, _ = g.cli("show", mailID("<first@example.org>"), "--json")
	var origin struct {
		Channel  string `json:"channel"`
		FromAddr string `json:"from_addr"`
	}
	if err := json.Unmarshal([]byte(out), &origin); err != nil ||
		origin.Channel != "email" || origin.FromAddr != "mailto:nurse@example.org" {
		t.Errorf("the message does not say it came from nurse@example.org by email (%v):\n%s", err, out)
	}
	var history []string
	for _, ev := range s.Events {
		history = append(history, ev.Detail)
	}
	h := strings.Join(history, "\n")
	for _, want := range []string{"accepted via email", "from nurse@example.org", `attachment "report.pdf" (application/pdf`, "signature cut"} {
		if !strings.Contains(h, want) {
			t.Errorf("history lacks %q:\n%s", want, h)
		}
	}

	// An HTML-only mail from the other allowed sender, to two phones.
	html := "<html><head><style>p{color:red}</style></head><body><p>Stock &amp; supplies: <b>low</b></p><div>Send more</div><blockquote>old</blockquote></body></html>"
	out, code = swaks(t, addr, "--from", "ops@ngo.org", "--to", "15555550100@sms.example.org,15555550123@sms.example.org",
		"--header", "Message-Id: <html@ngo.org>", "--add-header", "Content-Type: text/html; charset=utf-8", "--body", html)
	if code != 0 {
		t.Fatalf("html mail refused: exit %d\n%s", code, out)
	}
	g.waitEcho("Stock & supplies: low\nSend more")
	// The second phone is the simulated modem's own number: it gets the
	// SMS itself.
	waitFor(t, "the SMS to the second phone", 20*time.Second, func() bool {
		for _, m := range g.inbox() {
			if m.Peer == "+15555550123" && m.Text != nil && *m.Text == "Stock & supplies: low\nSend more" {
				return true
			}
		}
		return false
	})
}

// TestEmailAttachmentNameControl: a mail whose attachment's file name
// holds a control character goes out as SMS (its text); the attachment is
// left out as any other, the history naming it with the control
// character shown as U+FFFD (the mail was refused: 554 "bad multipart
// body: malformed MIME header line").
func TestEmailAttachmentNameControl(t *testing.T) {
	g, addr := emailGateway(t, "")
	g.start()
	att := filepath.Join(t.TempDir(), "report.pdf")
	os.WriteFile(att, []byte("%PDF-1.4 not really"), 0o600)
	out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "15555550100@sms.example.org",
		"--header", "Message-Id: <ctl@example.org>", "--body", "Report attached.",
		"--attach-type", "application/pdf", "--attach-name", "report\x01.pdf", "--attach", "@"+att)
	if code != 0 {
		t.Fatalf("mail refused: exit %d\n%s", code, out)
	}
	g.waitEcho("Report attached.")
	s := g.waitDelivered(mailID("<ctl@example.org>"))
	var history []string
	for _, ev := range s.Events {
		history = append(history, ev.Detail)
	}
	if h, want := strings.Join(history, "\n"), "attachment \"report\ufffd.pdf\" (application/pdf"; !strings.Contains(h, want) {
		t.Errorf("history lacks %q:\n%s", want, h)
	}
}

// TestEmailRefusals: every mail Outpost will not send is refused during
// the SMTP dialogue with a 5xx that says why, and nothing is stored.
func TestEmailRefusals(t *testing.T) {
	g, addr := emailGateway(t, "max_parts = 2\n")
	g.start()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown domain", []string{"--from", "nurse@example.org", "--to", "15555550100@other.org"}, "550 5.1.2 unknown recipient domain"},
		{"not a phone", []string{"--from", "nurse@example.org", "--to", "nurse-station@sms.example.org"}, `550 5.1.3 "nurse-station" is not a phone number`},
		{"sender not allowed", []string{"--from", "eve@evil.example.com", "--to", "15555550100@sms.example.org"}, `550 5.7.1 sender "eve@evil.example.com" is not allowed`},
		{"too long", []string{"--from", "nurse@example.org", "--to", "15555550100@sms.example.org", "--body", strings.Repeat("long text ", 40)},
			"554 5.3.4 text too long: 399 characters take 3 SMS parts, at most 2 are allowed"},
		{"bad number", []string{"--from", "nurse@example.org", "--to", "1@sms.example.org"}, `550 5.1.3 "1" is not a phone number`},
		{"quoted sender", []string{"--from", `"victim@other.org,x"@example.org`, "--to", "15555550100@sms.example.org"},
			"553 5.1.7 sender address"},
	} {
		out, code := swaks(t, addr, c.args...)
		if code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d, want a refusal %q:\n%s", c.name, code, c.want, out)
		}
	}
	// Nothing was stored: a mail taken after them is the only SMS out,
	// and the SMS queue takes messages in order.
	if out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "15555550100@sms.example.org",
		"--header", "Message-Id: <after-refusals@example.org>", "--body", "after the refusals"); code != 0 {
		t.Fatalf("mail refused: exit %d\n%s", code, out)
	}
	g.waitDelivered(mailID("<after-refusals@example.org>"))
	g.waitEcho("after the refusals")
	if es := g.inbox(); len(es) != 1 {
		t.Errorf("inbox has %d messages, want the one echo: %+v", len(es), es)
	}
}

// TestEmailCrashBeforeReply: the daemon dies (SIGKILL) after it committed
// a mail and before its 250: the client sends the mail again and it is
// stored once, one SMS goes out.
func TestEmailCrashBeforeReply(t *testing.T) {
	g, addr := emailGateway(t, "")
	g.start("OUTPOST_CRASH_AT=email-after-commit-before-250")
	args := []string{"--from", "nurse@example.org", "--to", "15555550100@sms.example.org",
		"--header", "Message-Id: <crash@example.org>", "--body", "crash before the reply"}
	if out, code := swaks(t, addr, args...); code == 0 {
		t.Fatalf("the mail was acknowledged before the crash:\n%s", out)
	}
	g.waitCrash()
	g.start()
	if out, code := swaks(t, addr, args...); code != 0 {
		t.Fatalf("the mail sent again was refused: exit %d\n%s", code, out)
	}
	s := g.waitDelivered(mailID("<crash@example.org>"))
	g.waitEcho("crash before the reply")
	if len(s.Deliveries) != 1 {
		t.Errorf("%d deliveries, want 1: %+v", len(s.Deliveries), s)
	}
	if n, _ := g.echoes("echo: crash before the reply"); n != 1 {
		t.Errorf("%d SMS went out, want 1", n)
	}
}

// TestEmailKillDuringData: a kill -9 while the client is in the middle of
// DATA stores nothing; the client's retry is stored once.
func TestEmailKillDuringData(t *testing.T) {
	g, addr := emailGateway(t, "")
	g.start()
	mailTo := func() (*smtp.Client, error) {
		c, err := smtp.Dial(addr)
		if err != nil {
			return nil, err
		}
		if err := c.Mail("nurse@example.org"); err != nil {
			return nil, err
		}
		return c, c.Rcpt("+15555550100@sms.example.org")
	}
	head := "From: nurse@example.org\r\nTo: +15555550100@sms.example.org\r\nMessage-Id: <killed@example.org>\r\n\r\n"
	c, err := mailTo()
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(head + "killed in the mid")); err != nil {
		t.Fatal(err)
	}
	g.d.kill()
	if _, err := w.Write([]byte("dle of data\r\n")); err == nil {
		if err = w.Close(); err == nil {
			t.Fatal("the mail was acknowledged by a killed daemon")
		}
	}
	c.Close()
	g.start()
	if s, _, code := g.cli("show", mailID("<killed@example.org>")); code == 0 {
		t.Fatalf("half a mail was stored: %s", s)
	}
	c, err = mailTo()
	if err != nil {
		t.Fatal(err)
	}
	w, _ = c.Data()
	w.Write([]byte(head + "killed in the middle of data\r\n"))
	if err := w.Close(); err != nil {
		t.Fatalf("the retry was refused: %v", err)
	}
	c.Quit()
	g.waitDelivered(mailID("<killed@example.org>"))
	g.waitEcho("killed in the middle of data")
	if n, _ := g.echoes("echo: killed in the middle of data"); n != 1 {
		t.Errorf("%d SMS went out, want 1", n)
	}
}

// TestEmailStoreErrorIs4xx: a mail that cannot be committed (the disk is
// full) gets a 4xx, so the sending server keeps it and tries again.
func TestEmailStoreErrorIs4xx(t *testing.T) {
	mnt := mountTmpfs(t, "size=3m")
	g, addr := emailGateway(t, "")
	cfg, _ := os.ReadFile(g.config)
	data := filepath.Join(mnt, "data")
	cfg = bytes.Replace(cfg, []byte(fmt.Sprintf("data_dir = %q", filepath.Join(g.dir, "data"))), []byte(fmt.Sprintf("data_dir = %q", data)), 1)
	writeConfig(t, g.config, string(cfg))
	g.start()
	filler := filepath.Join(mnt, "filler")
	fill(t, filler)
	var refused string
	for i := 0; i < 300 && refused == ""; i++ {
		out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "15555550100@sms.example.org",
			"--header", fmt.Sprintf("Message-Id: <full%d@example.org>", i), "--body", fmt.Sprintf("while full %d %s", i, strings.Repeat("y", 150)))
		if code != 0 {
			refused = out
		}
	}
	if !strings.Contains(refused, "451 4.3.0 cannot store the message now") || !strings.Contains(refused, "no space left") {
		t.Fatalf("a mail on a full disk was not answered 451 with the reason:\n%s", refused)
	}
	os.Remove(filler)
	if out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "15555550100@sms.example.org",
		"--header", "Message-Id: <after@example.org>", "--body", "after the disk was freed"); code != 0 {
		t.Fatalf("after the disk was freed: exit %d\n%s", code, out)
	}
	g.waitEcho("after the disk was freed")
}

// relay is an SMTP relay (aiosmtpd, testdata/smtp_relay.py) on a port of
// its own that keeps each mail it takes as a file in dir.
type relay struct {
	t    *testing.T
	addr string
	dir  string
	p    *proc
}

func newRelay(t *testing.T) *relay {
	t.Helper()
	if out, err := exec.Command("/usr/bin/python3", "-c", "import aiosmtpd").CombinedOutput(); err != nil {
		if os.Getenv("OUTPOST_REQUIRE_TOOLS") != "" {
			t.Fatalf("python3-aiosmtpd is not installed (scripts/test.sh installs it): %s", out)
		}
		t.Skip("python3-aiosmtpd is not installed; scripts/test.sh installs it")
	}
	return &relay{t: t, addr: freePort(t), dir: t.TempDir()}
}

// start runs the relay (again) on its port.
func (r *relay) start() {
	r.t.Helper()
	script, _ := filepath.Abs("testdata/smtp_relay.py")
	_, port, _ := strings.Cut(r.addr, ":")
	r.p = startCmd(r.t, r.dir, nil, "/usr/bin/python3", script, port, r.dir)
	waitFor(r.t, "the SMTP relay to listen", 20*time.Second, func() bool { return strings.Contains(r.p.out.String(), "ready") })
}

// answer makes the relay answer every mail with line ("": take them).
func (r *relay) answer(line string) {
	path := filepath.Join(r.dir, "answer")
	if line == "" {
		os.Remove(path)
		return
	}
	os.WriteFile(path, []byte(line), 0o600)
}

// mails returns the mails the relay took, in order.
func (r *relay) mails() []*mail.Message {
	r.t.Helper()
	names, _ := filepath.Glob(filepath.Join(r.dir, "[0-9]*.eml"))
	var ms []*mail.Message
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			r.t.Fatal(err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(b))
		if err != nil {
			r.t.Fatalf("%s: %v", n, err)
		}
		ms = append(ms, m)
	}
	return ms
}

// waitMail waits for the relay's n-th mail (1-based).
func (r *relay) waitMail(n int) (*mail.Message, string) {
	r.t.Helper()
	var ms []*mail.Message
	waitFor(r.t, fmt.Sprintf("mail %d at the relay", n), 30*time.Second, func() bool { ms = r.mails(); return len(ms) >= n })
	m := ms[n-1]
	body, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
	return m, strings.TrimSpace(strings.ReplaceAll(string(body), "\r\n", "\n"))
}

// emailDelivery is the state of an inbound message's delivery by mail.
func (g *gateway) emailDelivery(id, to string) (state string, attempts int, s shown) {
	s = g.show(id)
	for _, d := range s.Deliveries {
		if d.Recipient == to {
			return d.State, d.Attempts, s
		}
	}
	return "", 0, s
}

// TestEmailConversation is the round trip: a mail to a phone goes out as
// an SMS, the phone's answer (the simulated network's echo) comes back to
// the sender as a mail from +<number>@domain threaded on the mail (subject
// "Re: <the mail's>"), the sender's reply by mail goes to the phone again,
// and the phone's next answer is threaded on that reply (one "Re:").
func TestEmailConversation(t *testing.T) {
	r := newRelay(t)
	r.start()
	g, addr := emailGateway(t, fmt.Sprintf("smtp = \"smtp://%s\"\n", r.addr))
	g.start()
	if out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "15555550100@sms.example.org",
		"--header", "Message-Id: <doses@example.org>", "--header", "Subject: stock", "--body", "How many doses are left?"); code != 0 {
		t.Fatalf("mail refused: exit %d\n%s", code, out)
	}
	echo := g.waitEcho("How many doses are left?")
	m, body := r.waitMail(1)
	want := map[string]string{
		"X-Envelope-From": "+15555550100@sms.example.org",
		"X-Envelope-To":   "nurse@example.org",
		"From":            `"+15555550100" <+15555550100@sms.example.org>`,
		"Subject":         "Re: stock",
		"In-Reply-To":     "<doses@example.org>",
		"References":      "<doses@example.org>",
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if body != "echo: How many doses are left?" {
		t.Errorf("body %q", body)
	}
	first := m.Header.Get("Message-Id")
	if !strings.HasPrefix(first, "<") || !strings.HasSuffix(first, "@sms.example.org>") {
		t.Errorf("Message-ID %q", first)
	}
	waitFor(t, "the answer's mail delivery to be recorded", 20*time.Second, func() bool {
		st, _, _ := g.emailDelivery(echo.ID, "nurse@example.org")
		return st == "delivered"
	})

	// The nurse answers the mail; the reply goes to the phone, and the
	// phone's answer is threaded on the reply.
	if out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "15555550100@sms.example.org",
		"--header", "Message-Id: <reply@example.org>", "--header", "In-Reply-To: "+first, "--header", "References: <doses@example.org> "+first,
		"--header", "Subject: Re: stock",
		"--body", "Thanks. Send 20 more.\n\nOn Wed, 2 Dec 2026, +15555550100 wrote:\n> echo: How many doses are left?"); code != 0 {
		t.Fatalf("reply refused: exit %d\n%s", code, out)
	}
	g.waitEcho("Thanks. Send 20 more.")
	m, body = r.waitMail(2)
	if body != "echo: Thanks. Send 20 more." {
		t.Errorf("second body %q", body)
	}
	if got := m.Header.Get("Subject"); got != "Re: stock" {
		t.Errorf("second Subject %q, want \"Re: stock\" (one Re:)", got)
	}
	if got := m.Header.Get("In-Reply-To"); got != "<reply@example.org>" {
		t.Errorf("second In-Reply-To %q", got)
	}
	if got, want := m.Header.Get("References"), "<doses@example.org> "+first+" <reply@example.org>"; got != want {
		t.Errorf("second References %q, want %q", got, want)
	}
	if m.Header.Get("Message-Id") == first {
		t.Error("both mails have one Message-ID")
	}
	// An SMS from a phone no one mailed goes to no one by mail.
	if n := len(r.mails()); n != 2 {
		t.Errorf("%d mails at the relay, want 2", n)
	}
}

// TestEmailRelayOutage: while the relay is down, and while it answers
// 4xx, the answer's mail waits without using up its attempts; once the
// relay takes mail it is delivered. A 5xx fails it with the relay's
// answer in outpost show.
func TestEmailRelayOutage(t *testing.T) {
	r := newRelay(t)
	g, addr := emailGateway(t, fmt.Sprintf("smtp = \"smtp://%s\"\n", r.addr))
	g.start("OUTPOST_RETRY=20ms,200ms")
	mailIn := func(id, text string) inboxEntry {
		t.Helper()
		if out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "15555550100@sms.example.org",
			"--header", "Message-Id: <"+id+"@example.org>", "--body", text); code != 0 {
			t.Fatalf("mail refused: exit %d\n%s", code, out)
		}
		return g.waitEcho(text)
	}
	echo := mailIn("down", "while the relay is down")
	notCounted := func(n int) func() bool {
		return func() bool {
			_, _, s := g.emailDelivery(echo.ID, "nurse@example.org")
			c := 0
			for _, e := range s.Events {
				if strings.Contains(e.Detail, "not counted") {
					c++
				}
			}
			return c >= n
		}
	}
	waitFor(t, "two outages recorded", 20*time.Second, notCounted(2))
	r.answer("451 4.3.0 mailbox busy, try later")
	r.start()
	waitFor(t, "the 451 recorded as an outage", 20*time.Second, func() bool {
		_, _, s := g.emailDelivery(echo.ID, "nurse@example.org")
		for _, e := range s.Events {
			if strings.Contains(e.Detail, "not counted") && strings.Contains(e.Detail, "451 4.3.0 mailbox busy") {
				return true
			}
		}
		return false
	})
	if st, n, _ := g.emailDelivery(echo.ID, "nurse@example.org"); n > 1 || st == "failed" {
		t.Fatalf("attempts used up by the outage: %s after %d attempts", st, n)
	}
	r.answer("")
	_, body := r.waitMail(1)
	if body != "echo: while the relay is down" {
		t.Errorf("body %q", body)
	}
	waitFor(t, "delivered", 20*time.Second, func() bool {
		st, _, _ := g.emailDelivery(echo.ID, "nurse@example.org")
		return st == "delivered"
	})
	if _, n, s := g.emailDelivery(echo.ID, "nurse@example.org"); n > 1 {
		t.Errorf("delivered after %d counted attempts, want 1: %+v", n, s)
	}

	r.answer("550 5.7.1 nurse@example.org: relaying denied")
	echo = mailIn("refused", "the relay refuses this one")
	waitFor(t, "failed", 20*time.Second, func() bool {
		st, _, _ := g.emailDelivery(echo.ID, "nurse@example.org")
		return st == "failed"
	})
	out, _, _ := g.cli("show", echo.ID)
	if !strings.Contains(out, "550 5.7.1 nurse@example.org: relaying denied") {
		t.Errorf("outpost show does not give the relay's answer:\n%s", out)
	}
}

// TestEmailPortInUse: an SMTP port that cannot be had stops the start,
// saying which.
func TestEmailPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g := newGatewayWith(t, "", fmt.Sprintf("[email]\nlisten = %q\ndomain = \"sms.example.org\"\nallow = [\"*@example.org\"]\n", l.Addr().String()))
	cfg, _ := os.ReadFile(g.config)
	runFails(t, g.dir, string(cfg), "email.listen", "address already in use")
}

// TestEmailAuthSTARTTLS: with [[email.account]] accounts a sender must AUTH
// (here after STARTTLS, with the certificate of email.tls_cert) before
// MAIL; a wrong password is refused, and the allow list still applies.
func TestEmailAuthSTARTTLS(t *testing.T) {
	var hash strings.Builder
	if code := cmdPasswd(nil, strings.NewReader("clinic-pass\n"), &hash); code != 0 {
		t.Fatal("passwd")
	}
	c := testCerts(t, t.TempDir())
	g, addr := emailGateway(t, fmt.Sprintf("tls_cert = %q\ntls_key = %q\n[[email.account]]\nname = \"clinic\"\npassword_hash = %q\n",
		c.cert, c.key, strings.TrimSpace(hash.String())))
	g.start()
	base := []string{"--from", "nurse@example.org", "--to", "15555550100@sms.example.org"}
	if out, code := swaks(t, addr, append(base, "--tls")...); code == 0 || !strings.Contains(out, "530 5.7.0 authentication required") {
		t.Errorf("no AUTH: exit %d\n%s", code, out)
	}
	if out, code := swaks(t, addr, append(base, "--tls", "--auth", "PLAIN", "--auth-user", "clinic", "--auth-password", "wrong")...); code == 0 || !strings.Contains(out, "535 5.7.8") {
		t.Errorf("wrong password: exit %d\n%s", code, out)
	}
	if out, code := swaks(t, addr, "--from", "eve@evil.example.com", "--to", "15555550100@sms.example.org",
		"--tls", "--auth", "PLAIN", "--auth-user", "clinic", "--auth-password", "clinic-pass"); code == 0 || !strings.Contains(out, "550 5.7.1") {
		t.Errorf("authenticated sender not allowed: exit %d\n%s", code, out)
	}
	out, code := swaks(t, addr, append(base, "--tls", "--auth", "PLAIN", "--auth-user", "clinic", "--auth-password", "clinic-pass",
		"--header", "Message-Id: <tls@example.org>", "--body", "over STARTTLS")...)
	if code != 0 || !strings.Contains(out, "STARTTLS") || !strings.Contains(out, "TLS started") {
		t.Fatalf("authenticated mail over STARTTLS: exit %d\n%s", code, out)
	}
	g.waitEcho("over STARTTLS")
}
