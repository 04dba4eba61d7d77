package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// noticeID is the id of the notice of message id's SMS to number.
func noticeID(id, number string) string {
	sum := sha256.Sum256([]byte(id + "\x00" + number))
	return "notice-" + hex.EncodeToString(sum[:16])
}

// events counts the history lines of a message that hold sub.
func events(s shown, sub string) int {
	n := 0
	for _, e := range s.Events {
		if strings.Contains(e.Detail, sub) {
			n++
		}
	}
	return n
}

// TestEmailFailedSMSNotice: a mail to a number no one answers
// (+15555550199: the simulated network's status report says "not
// obtainable") fails, and its sender gets one notice through the relay,
// threaded on the mail, naming the number, the reason and the message
// id. outpost retry fails it again: no second notice. A mail whose SMS is
// delivered gets none. A notice the relay refuses fails and makes no
// notice of its own.
func TestEmailFailedSMSNotice(t *testing.T) {
	r := newRelay(t)
	r.start()
	g, addr := emailGateway(t, fmt.Sprintf("smtp = \"smtp://%s\"\n", r.addr))
	g.start()
	if out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "15555550199@sms.example.org",
		"--header", "Message-Id: <lost@example.org>", "--header", "Subject: stock", "--body", "How many doses are left?"); code != 0 {
		t.Fatalf("mail refused: exit %d\n%s", code, out)
	}
	id := mailID("<lost@example.org>", "+15555550199")
	g.waitState(id, "failed")
	m, body := r.waitMail(1)
	for k, want := range map[string]string{
		"X-Envelope-From": "outpost@sms.example.org",
		"X-Envelope-To":   "nurse@example.org",
		"From":            `"Outpost" <outpost@sms.example.org>`,
		"Subject":         "Re: stock (SMS to +15555550199 failed)",
		"In-Reply-To":     "<lost@example.org>",
		"References":      "<lost@example.org>",
		"Auto-Submitted":  "auto-replied",
		"Message-Id":      "<" + noticeID(id, "+15555550199") + "@sms.example.org>",
	} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	for _, want := range []string{"Your SMS to +15555550199 could not be delivered.", "Reason: part 1/1: not obtainable (TP-ST 67)",
		"Message id: " + id, "Text: How many doses are left?"} {
		if !strings.Contains(body, want) {
			t.Errorf("the notice lacks %q:\n%s", want, body)
		}
	}

	// Retried, it fails again: the notice was once.
	if out, errs, code := g.cli("retry", id); code != 0 {
		t.Fatalf("retry: exit %d: %s%s", code, out, errs)
	}
	waitFor(t, "the retry to fail", 20*time.Second, func() bool {
		s := g.show(id)
		return s.State == "failed" && events(s, "not obtainable") >= 2
	})
	if s := g.show(id); events(s, "notice notice-") != 1 {
		t.Errorf("%d notices, want 1:\n%+v", events(s, "notice notice-"), s.Events)
	}

	// Delivered: no notice. The phone's answer is the relay's next mail.
	if out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "15555550100@sms.example.org",
		"--header", "Message-Id: <fine@example.org>", "--body", "all fine"); code != 0 {
		t.Fatalf("mail refused: exit %d\n%s", code, out)
	}
	s := g.waitDelivered(mailID("<fine@example.org>"))
	if _, body := r.waitMail(2); body != "echo: all fine" {
		t.Errorf("second mail %q, want the answer", body)
	}
	if events(s, "notice") != 0 {
		t.Errorf("a notice of a delivered SMS: %+v", s.Events)
	}

	// The relay refuses the next notice: it fails, and nothing notices
	// that.
	r.answer("550 5.1.1 nurse@example.org: mailbox unavailable")
	if out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "15555550198@sms.example.org",
		"--header", "Message-Id: <bounce@example.org>", "--body", "to no one"); code != 0 {
		t.Fatalf("mail refused: exit %d\n%s", code, out)
	}
	id2 := mailID("<bounce@example.org>", "+15555550198")
	notice := noticeID(id2, "+15555550198")
	var ns shown
	waitFor(t, "the refused notice to fail", 20*time.Second, func() bool {
		out, _, code := g.cli("show", notice, "--json")
		return code == 0 && json.Unmarshal([]byte(out), &ns) == nil && ns.State == "failed"
	})
	if events(ns, "550 5.1.1 nurse@example.org: mailbox unavailable") == 0 || events(ns, "notice notice-") != 0 {
		t.Errorf("the refused notice's history:\n%+v", ns.Events)
	}
	if out, _, code := g.cli("show", noticeID(notice, "nurse@example.org")); code == 0 {
		t.Errorf("a notice of a notice:\n%s", out)
	}
	if s := g.show(id2); events(s, "notice notice-") != 1 {
		t.Errorf("%d notices, want 1:\n%+v", events(s, "notice notice-"), s.Events)
	}
}

// TestEmailToGroup: mail to group-<name>@domain sends the text to each of
// the group's numbers; an unknown group is refused at RCPT with a 550
// that names it (no DATA is sent).
func TestEmailToGroup(t *testing.T) {
	g, addr := emailGateway(t, "[groups]\nward = [\"+15555550100\", \"+15555550123\"]\n")
	g.start()
	out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "group-doctors@sms.example.org", "--body", "x")
	if code == 0 || !strings.Contains(out, `550 5.1.1 group-doctors@sms.example.org: unknown group "doctors"`) || strings.Contains(out, " -> DATA") {
		t.Errorf("an unknown group: exit %d, want a 550 at RCPT:\n%s", code, out)
	}
	if out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "group-ward@sms.example.org",
		"--header", "Message-Id: <ward@example.org>", "--body", "Shift change at 6"); code != 0 {
		t.Fatalf("mail to a group refused: exit %d\n%s", code, out)
	}
	s := g.waitDelivered(mailID("<ward@example.org>", "group:ward"))
	if len(s.Deliveries) != 2 || events(s, "group ward: 2 numbers") == 0 {
		t.Errorf("the group's message: %+v", s)
	}
	g.waitEcho("Shift change at 6")
	waitFor(t, "the SMS to the group's second number", 20*time.Second, func() bool {
		for _, m := range g.inbox() {
			if m.Peer == "+15555550123" && m.Text != nil && *m.Text == "Shift change at 6" {
				return true
			}
		}
		return false
	})
}

// TestEmailSubjectPrefixAndTemplate: with email.subject = "prefix" the
// subject (without its "Re:") is the SMS's first line; with
// email.subject_template, a phone's answer to a mail without a subject is
// mailed with that subject, its placeholders filled in. outpost config
// check refuses an unknown placeholder.
func TestEmailSubjectPrefixAndTemplate(t *testing.T) {
	r := newRelay(t)
	r.start()
	g, addr := emailGateway(t, fmt.Sprintf("smtp = \"smtp://%s\"\nsubject = \"prefix\"\nsubject_template = \"Texto de {from} via {modem}\"\n", r.addr))
	cfg, _ := os.ReadFile(g.config)
	bad := filepath.Join(g.dir, "bad.toml")
	writeConfig(t, bad, strings.Replace(string(cfg), "{modem}", "{sender}", 1))
	if out, errs, code := cli(t, g.dir, "config", "check", bad); code != 1 ||
		!strings.Contains(errs+out, `email.subject_template = "Texto de {from} via {sender}": unknown placeholder {sender}`) {
		t.Errorf("config check of an unknown placeholder: exit %d\n%s%s", code, out, errs)
	}
	g.start()
	if out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "15555550100@sms.example.org",
		"--header", "Message-Id: <plain@example.org>", "--header", "Subject:", "--body", "template check"); code != 0 {
		t.Fatalf("mail refused: exit %d\n%s", code, out)
	}
	g.waitEcho("template check")
	if m, _ := r.waitMail(1); m.Header.Get("Subject") != "Texto de +15555550100 via sim0" {
		t.Errorf("answer's subject %q", m.Header.Get("Subject"))
	}
	if out, code := swaks(t, addr, "--from", "nurse@example.org", "--to", "15555550100@sms.example.org",
		"--header", "Message-Id: <prefixed@example.org>", "--header", "Subject: Re: Vaccine stock", "--body", "How many doses are left?"); code != 0 {
		t.Fatalf("mail refused: exit %d\n%s", code, out)
	}
	g.waitEcho("Vaccine stock\nHow many doses are left?")
	if m, _ := r.waitMail(2); m.Header.Get("Subject") != "Re: Vaccine stock" {
		t.Errorf("answer's subject %q", m.Header.Get("Subject"))
	}
}
