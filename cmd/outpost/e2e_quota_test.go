package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestQuotaOverOnEveryChannel is issue 12's acceptance 5, quotas: each
// source (the CLI's user, an HTTP caller, an MQTT client, a mail sender)
// gets its sms_per_hour, counted as the daemon accepts its SMS, and the
// send past it is refused on its own channel with the reason and when
// there is room again: the CLI exits 1, HTTP answers 429 with
// Retry-After, MQTT's sms/send/reply says ok:false, SMTP answers 451
// 4.7.1 (the sending server keeps the mail and tries again). The counts
// survive a restart.
func TestQuotaOverOnEveryChannel(t *testing.T) {
	g, smtpAddr := emailGateway(t, "\n[quota]\nsms_per_hour = 2\n[[quota.source]]\nwho = \"mqtt:limited-*\"\nsms_per_hour = 1\n")
	g.start()

	// CLI: two SMS, the third refused.
	g.send("cli 1")
	g.send("cli 2")
	_, errs, code := g.cli("send", "--to", "+15555550100", "--text", "cli 3")
	if code != 1 || !strings.Contains(errs, "had 2 SMS accepted in the last hour") || !strings.Contains(errs, "[quota] sms_per_hour = 2") ||
		!strings.Contains(errs, "room for it again at") {
		t.Errorf("the CLI's 3rd SMS in the hour: exit %d: %s", code, errs)
	}

	// outpost quota says where the CLI's user stands.
	out, _, code := g.cli("quota", "--json")
	var q struct {
		Who         string
		Rule        string
		SMSLastHour int `json:"sms_last_hour"`
		SMSPerHour  int `json:"sms_per_hour"`
	}
	if err := json.Unmarshal([]byte(out), &q); err != nil || code != 0 || !strings.HasPrefix(q.Who, "user ") || q.Rule != "[quota]" ||
		q.SMSLastHour != 2 || q.SMSPerHour != 2 {
		t.Errorf("outpost quota: exit %d, %v: %s", code, err, out)
	}

	// HTTP: the caller says who it is; a send to two numbers counts 2.
	app := map[string]string{"X-Outpost-By": "app-1"}
	if code, _, v := g.postWith(app, `{"to": ["+15555550100", "+15555550123"], "text": "http 1"}`); code != 201 {
		t.Fatalf("HTTP send: %d %v", code, v)
	}
	code, hdr, v := g.postWith(app, `{"to": "+15555550100", "text": "http 2"}`)
	retry, _ := strconv.Atoi(hdr.Get("Retry-After"))
	if msg, _ := v["error"].(string); code != 429 || retry < 3500 || retry > 3600 || v["retry_after"] != float64(retry) ||
		!strings.Contains(msg, "app-1 had 2 SMS accepted in the last hour") {
		t.Errorf("HTTP over quota: %d, Retry-After %q, %v", code, hdr.Get("Retry-After"), v)
	}
	// Another caller has its own count.
	if code, _, v := g.postWith(map[string]string{"X-Outpost-By": "app-2"}, `{"to": "+15555550100", "text": "http 3"}`); code != 201 {
		t.Errorf("another caller: %d %v", code, v)
	}

	// MQTT: the client's [[quota.source]] allows 1 an hour.
	c, got := g.subscribe("limited-1")
	in := &topics{t: t, got: got}
	reply := func() map[string]any {
		t.Helper()
		return in.next("sms/send/reply", func(topic string) bool { return topic == "outpost/gw1/sms/send/reply" })
	}
	publishJSON(t, c, "outpost/gw1/sms/send", `{"to": "+15555550100", "text": "mqtt 1"}`)
	if r := reply(); r["ok"] != true {
		t.Fatalf("MQTT send: %v", r)
	}
	publishJSON(t, c, "outpost/gw1/sms/send", `{"to": "+15555550100", "text": "mqtt 2"}`)
	if r := reply(); r["ok"] != false || r["retry_after"] == nil || !strings.Contains(fmt.Sprint(r["error"]), `mqtt:limited-1 had 1 SMS accepted in the last hour and may have 1 ([[quota.source]] 1 who = "mqtt:limited-*" sms_per_hour = 1)`) {
		t.Errorf("MQTT over quota: %v", r)
	}

	// admin/quota answers the client where it stands.
	publishJSON(t, c, "outpost/gw1/admin/quota", `{}`)
	if r := in.next("admin/quota/reply", func(topic string) bool { return topic == "outpost/gw1/admin/quota/reply" }); r["who"] != "mqtt:limited-1" ||
		r["sms_last_hour"] != float64(1) || r["sms_per_hour"] != float64(1) {
		t.Errorf("admin/quota: %v", r)
	}

	// Email: a real SMTP client; the third mail gets a 4xx.
	mail := func(n int) (string, int) {
		return swaks(t, smtpAddr, "--from", "nurse@example.org", "--to", "15555550100@sms.example.org",
			"--header", fmt.Sprintf("Message-Id: <quota-%d@example.org>", n), "--body", fmt.Sprintf("mail %d", n))
	}
	for n := 1; n <= 2; n++ {
		if out, code := mail(n); code != 0 {
			t.Fatalf("mail %d refused: exit %d\n%s", n, code, out)
		}
	}
	out, code = mail(3)
	if code == 0 || !strings.Contains(out, "451 4.7.1") || !strings.Contains(out, "mailto:nurse@example.org had 2 SMS accepted in the last hour") {
		t.Errorf("mail over quota: exit %d\n%s", code, out)
	}

	// A restart does not reset the counts.
	g.d.stop()
	g.start()
	if _, errs, code := g.cli("send", "--to", "+15555550100", "--text", "cli 4"); code != 1 || !strings.Contains(errs, "had 2 SMS accepted") {
		t.Errorf("after a restart, the CLI's 3rd SMS in the hour: exit %d: %s", code, errs)
	}
}

// TestQuietHoursHoldLowPriority is issue 12's acceptance 5, quiet hours,
// with the daemon's clock set to 22:30 in Nairobi (OUTPOST_CLOCK): a low
// priority send is held (scheduled, "quiet hours until 07:00"), an urgent
// one goes at once, and so does an answer to the message the person just
// sent; at 07:00 the held one goes.
func TestQuietHoursHoldLowPriority(t *testing.T) {
	g := newGatewayWith(t, "", "[quota]\nquiet_hours = \"21:00-07:00\"\ntimezone = \"Africa/Nairobi\"\nquiet_priority = \"urgent\"\n")
	g.start("OUTPOST_CLOCK=2026-12-02T22:30:00+03:00")
	held := g.send("the weekly newsletter", "--priority", "low")
	urgent := g.send("flood warning", "--priority", "urgent")
	echo := g.waitEcho("flood warning")
	g.waitDelivered(urgent)
	answer := g.send("thanks, noted", "--in-reply-to", echo.ID)
	g.waitDelivered(answer)
	s := g.show(held)
	history := ""
	for _, e := range s.Events {
		history += e.State + " " + e.Detail + "\n"
	}
	if s.State != "scheduled" || !strings.Contains(history, "quiet hours until 07:00 (2026-12-03, Africa/Nairobi; priority low is below quota.quiet_priority urgent)") {
		t.Fatalf("the low-priority send during quiet hours is %s:\n%s", s.State, history)
	}
	if n, _ := g.echoes("echo: the weekly newsletter"); n != 0 {
		t.Fatal("the held send went out")
	}
	// The morning: the box comes back at 06:59:58; the send goes at 07:00.
	g.d.stop()
	g.start("OUTPOST_CLOCK=2026-12-03T06:59:58+03:00")
	g.waitDelivered(held)
	out, _, _ := g.cli("show", held, "--json")
	var v struct {
		Events []struct {
			State string
			At    time.Time
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	seven := time.Date(2026, 12, 3, 4, 0, 0, 0, time.UTC) // 07:00 in Nairobi
	for _, e := range v.Events {
		if e.State == "sending" && e.At.Before(seven) {
			t.Errorf("the held send went at %v, before the end of the quiet hours", e.At)
		}
	}
}

// TestPerNumberQuotaSkipsInGroups: per_number_per_hour through the
// binary: a number named directly past its bound is refused with the
// reason (CLI exit 1); a group send skips it and names it in its notes
// (HTTP "notes", MQTT sms/send/reply "notes", the CLI's note: lines) and
// goes to the others; an answer to the number's own message goes.
func TestPerNumberQuotaSkipsInGroups(t *testing.T) {
	g := newGatewayWith(t, "", "[quota]\nper_number_per_hour = 1\n[groups]\nteam = [\"+15555550100\", \"+15555550131\"]\ncrew = [\"+15555550100\", \"+15555550132\"]\nsquad = [\"+15555550100\", \"+15555550133\"]\n")
	g.start()
	g.send("first")
	echo := g.waitEcho("first")
	if _, errs, code := g.cli("send", "--to", "+15555550100", "--text", "second"); code != 1 ||
		!strings.Contains(errs, "+15555550100 already got 1 SMS in the last hour (quota.per_number_per_hour = 1): nothing more is sent to it until") {
		t.Errorf("a direct send past the bound: exit %d: %s", code, errs)
	}
	_, errs, code := g.cli("send", "--to", "group:team", "--text", "team 1")
	if code != 0 || !strings.Contains(errs, "note: +15555550100 skipped: +15555550100 already got 1 SMS in the last hour") {
		t.Errorf("CLI group send: exit %d: %s", code, errs)
	}
	code, _, v := g.postWith(nil, `{"to": "group:crew", "text": "crew"}`)
	if notes := fmt.Sprint(v["notes"]); code != 201 || !strings.Contains(notes, "+15555550100 skipped") || strings.Contains(notes, "+15555550132 skipped") {
		t.Errorf("HTTP group send: %d %v", code, v)
	}
	c, got := g.subscribe("team-app")
	in := &topics{t: t, got: got}
	reply := func() map[string]any {
		t.Helper()
		return in.next("sms/send/reply", func(topic string) bool { return topic == "outpost/gw1/sms/send/reply" })
	}
	publishJSON(t, c, "outpost/gw1/sms/send", `{"to": "group:squad", "text": "squad"}`)
	if r := reply(); r["ok"] != true || !strings.Contains(fmt.Sprint(r["notes"]), "+15555550100 skipped") {
		t.Errorf("MQTT group send: %v", r)
	}
	// +…0131 had its SMS now: all of team is over, refused.
	publishJSON(t, c, "outpost/gw1/sms/send", `{"to": "group:team", "text": "team 2"}`)
	r := reply()
	if r["ok"] != false || !strings.Contains(fmt.Sprint(r["error"]), "every recipient is over quota.per_number_per_hour") {
		t.Errorf("MQTT group send, every number over: %v", r)
	}
	// The person wrote: the answer goes.
	if _, errs, code := g.cli("send", "--to", "+15555550100", "--text", "answer", "--in-reply-to", echo.ID); code != 0 {
		t.Errorf("an answer to the number's own message: exit %d: %s", code, errs)
	}
}
