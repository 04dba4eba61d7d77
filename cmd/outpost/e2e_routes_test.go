package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/pdu"
)

// routedShown is what the routes test reads of outpost show --json.
type routedShown struct {
	ID         string   `json:"id"`
	Channel    string   `json:"channel"`
	Peer       string   `json:"peer"`
	State      string   `json:"state"`
	Tags       []string `json:"tags"`
	Deliveries []struct {
		Connector, Recipient, State string
	} `json:"deliveries"`
	Events []struct{ State, Detail string } `json:"events"`
}

func (g *gateway) routedShow(id string) routedShown {
	g.t.Helper()
	out, errs, code := g.cli("show", id, "--json")
	if code != 0 {
		g.t.Fatalf("show: exit %d: %s", code, errs)
	}
	var s routedShown
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		g.t.Fatalf("show output: %v\n%s", err, out)
	}
	return s
}

// TestRoutesEndToEnd: the real daemon with a simulated modem and
// [[route]]s. A phone texts "help me": the keyword route POSTs it to the
// webhook (which subscribes to status changes only: the copy is the
// route's), tags it, and answers "Thanks, we got it." by SMS, a message of
// its own (channel route) that goes out through the modem (the
// simulator's echo subscriber answers it); the route after it, stopped,
// adds neither its tag nor its copy. A form is POSTed by the form route.
// Both are still published on sms/in and xform/<form> (the defaults),
// sms/in with the tags; the echo of the reply matches no keyword and
// triggers nothing.
func TestRoutesEndToEnd(t *testing.T) {
	r := newHookReceiver(t, "route secret")
	dir := t.TempDir()
	device, modem := controlledSim(t, dir)
	g := newGatewayWith(t, device, fmt.Sprintf(`[[webhook]]
name = "kobo"
url = "http://%[1]s/kobo"
events = ["sms.status"]
secret = "route secret"
[[webhook]]
name = "late"
url = "http://%[1]s/late"
events = ["sms.status"]
secret = "route secret"
[[route]]
channel = "sms"
from = "+1555555*"
keyword = "HELP"
to = ["webhook:kobo"]
reply = "Thanks, we got it."
tag = "help"
stop = true
[[route]]
keyword = "help"
to = ["webhook:late", "webhook:kobo"]
reply = "second reply"
tag = "late"
[[route]]
form = "ping"
to = ["webhook:kobo"]
tag = "survey"
`, r.addr))
	g.start()
	_, got := g.subscribe("hq")
	mq := &topics{t: t, got: got}

	for _, p := range phoneParts(t, "+15555550100", pdu.Outgoing{Text: "help me please"}, 1) {
		modem.deliver(t, p)
	}
	small := `<?xml version="1.0"?><ping id="ping"><meta><instanceID>uuid:7</instanceID></meta></ping>`
	for _, p := range phoneParts(t, "+15550004444", pdu.Outgoing{Text: small}, 2) {
		modem.deliver(t, p)
	}

	// The reply goes out as SMS; the echo subscriber answers it.
	echo := g.waitEcho("Thanks, we got it.")
	var help inboxEntry
	for _, m := range g.fromInbox("+15555550100") {
		if m.Text != nil && *m.Text == "help me please" {
			help = m
		}
	}
	if help.ID == "" {
		t.Fatalf("the help message is not in the inbox: %+v", g.inbox())
	}
	in := g.routedShow(help.ID)
	if strings.Join(in.Tags, ",") != "help" {
		t.Errorf("tags %q, want only help (route 2 comes after a stop)", in.Tags)
	}
	var routed []string
	for _, d := range in.Deliveries {
		routed = append(routed, d.Connector+" "+d.Recipient)
	}
	if strings.Join(routed, "|") != "mqtt |webhook kobo" {
		t.Errorf("deliveries %q, want the default mqtt and the route's kobo", routed)
	}
	var replyID string
	for _, e := range in.Events {
		if e.State == "auto-reply" {
			replyID = strings.Fields(e.Detail)[2]
		}
	}
	if replyID == "" {
		t.Fatalf("no auto-reply in the history: %+v", in.Events)
	}
	reply := g.routedShow(replyID)
	if reply.Channel != "route" || reply.Peer != "+15555550100" || reply.State != "sent" && reply.State != "delivered" {
		t.Errorf("reply %+v", reply)
	}
	if len(reply.Events) == 0 || !strings.Contains(reply.Events[0].Detail, "auto-reply of route 1 to "+help.ID) {
		t.Errorf("the reply's history does not name its route: %+v", reply.Events)
	}
	if e := g.routedShow(echo.ID); len(e.Tags) != 0 || len(e.Deliveries) != 1 {
		t.Errorf("the echo of the reply was routed: %+v", e)
	}

	// The POSTs: the help message and the form, once each, by the routes;
	// nothing to "late".
	var form inboxEntry
	waitFor(t, "the routed POSTs", 20*time.Second, func() bool {
		var n int
		for _, p := range r.taken() {
			if p.Event == "sms.in" || p.Event == "xform" {
				n++
			}
		}
		return n >= 2
	})
	for _, m := range g.fromInbox("+15550004444") {
		form = m
	}
	var ins, forms int
	for _, p := range r.taken() {
		switch p.Event {
		case "sms.in":
			ins++
			if p.Message.ID != help.ID || p.Message.Text != "help me please" || strings.Join(p.Message.Tags, ",") != "help" {
				t.Errorf("sms.in POST %+v", p)
			}
		case "xform":
			forms++
			if p.Message.ID != form.ID || p.Message.FormID != "ping" || strings.Join(p.Message.Tags, ",") != "survey" {
				t.Errorf("xform POST %+v", p)
			}
		}
	}
	if ins != 1 || forms != 1 {
		t.Errorf("%d sms.in and %d xform POSTs, want one each", ins, forms)
	}
	for _, d := range g.routedShow(form.ID).Deliveries {
		if d.Recipient == "late" {
			t.Errorf("the form went to late: %+v", d)
		}
	}

	// The defaults still happen: sms/in (with the tags) and xform/ping.
	v := mq.next("sms/in of the help message", func(topic string) bool { return strings.HasSuffix(topic, "/sms/in") })
	if v["id"] != help.ID || fmt.Sprint(v["tags"]) != "[help]" {
		t.Errorf("sms/in %v", v)
	}
	if v := mq.next("xform/ping", func(topic string) bool { return strings.HasSuffix(topic, "/xform/ping") }); v["id"] != form.ID {
		t.Errorf("xform/ping %v", v)
	}
	out, _, _ := g.cli("show", help.ID)
	if !strings.Contains(out, "tags:      help\n") {
		t.Errorf("outpost show does not give the tags:\n%s", out)
	}
}

// TestRoutesConfigCheck: outpost config check refuses a route to an
// address no configured connector delivers to, naming the route, and the
// daemon does not start with it.
func TestRoutesConfigCheck(t *testing.T) {
	dir := t.TempDir()
	cfg := `gateway_id = "gw1"
data_dir = "` + filepath.Join(dir, "data") + `"
[mqtt]
listen = "127.0.0.1:0"
allow_anonymous = true
[[modem]]
id = "sim0"
type = "sim"
[[route]]
keyword = "help"
tag = "help"
[[route]]
keyword = "ops"
to = ["mailto:ops@example.org"]
`
	path := filepath.Join(dir, "routes.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	want := `route 2: to "mailto:ops@example.org": no connector delivers to mailto: addresses (configure [email])`
	out, errs, code := cli(t, dir, "config", "check", path)
	if code != 1 || !strings.Contains(errs, want) || strings.Contains(out, ": ok") {
		t.Errorf("config check: exit %d\n%s%s\nwant exit 1 with %q", code, out, errs, want)
	}
	runFails(t, t.TempDir(), cfg, strings.ReplaceAll(want, `"`, `\"`)) // logfmt quotes it

	// Every problem at once: a value of the wrong type and an invalid
	// value do not hide the route's.
	mixed := strings.Replace(cfg, "gateway_id = \"gw1\"\n", "gateway_id = \"gw1\"\nlog_level = 5\n", 1) + "[retention]\nmessages = \"1m\"\n"
	if err := os.WriteFile(path, []byte(mixed), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := cli(t, dir, "config", "check", path); code != 1 || !strings.Contains(errs, want) ||
		!strings.Contains(errs, "log_level: must be a string") || !strings.Contains(errs, "retention.messages") {
		t.Errorf("config check of a file with three kinds of problem: exit %d\n%s%s\nwant each of them, and %q", code, out, errs, want)
	}

	// A route the config itself refuses is named the same way, from 1:
	// by config check and by run.
	badChannel := strings.Replace(cfg, "keyword = \"ops\"\n", "keyword = \"ops\"\nchannel = \"fax\"\n", 1)
	if err := os.WriteFile(path, []byte(badChannel), 0o600); err != nil {
		t.Fatal(err)
	}
	wantChannel := `route 2: channel = "fax": is not a channel`
	if out, errs, code := cli(t, dir, "config", "check", path); code != 1 || !strings.Contains(errs, wantChannel) || strings.Contains(errs, "route[") {
		t.Errorf("config check: exit %d\n%s%s\nwant exit 1 with %q", code, out, errs, wantChannel)
	}
	runFails(t, t.TempDir(), badChannel, wantChannel)

	// With [email] it is good.
	good := cfg + "[email]\nsmtp = \"smtp://127.0.0.1:2525\"\ndomain = \"sms.example.org\"\n"
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := cli(t, dir, "config", "check", path); code != 0 {
		t.Errorf("config check with [email]: exit %d\n%s%s", code, out, errs)
	}
}

// TestRoutesReplyPingPong: a route that answers every SMS from the echo
// subscriber, which answers every SMS: without a guard they would text
// each other forever (as two gateways with such routes do). On the
// defaults the loop stops after one answer: the echo of the answer
// repeats it (an automatic message) and gets none, and the sender's next
// SMS within the hour gets none either (route_reply_limit 1 per
// route_reply_window 1h). Each unanswered SMS is still stored and
// delivered to its routes, its history says why, and the log says it
// once.
func TestRoutesReplyPingPong(t *testing.T) {
	g := newGatewayWith(t, "", `[[route]]
from = "+15555550100"
reply = "got it"
tag = "echo"
`)
	g.start()
	g.send("ping")
	answered := func(text string) routedShown {
		t.Helper()
		e := g.waitEcho(text)
		var s routedShown
		waitFor(t, "the routes of "+text, 20*time.Second, func() bool {
			s = g.routedShow(e.ID)
			return len(s.Tags) == 1
		})
		if s.Tags[0] != "echo" {
			t.Errorf("the echo of %s lost its route: %+v", text, s)
		}
		return s
	}
	if s := answered("ping"); !slices.ContainsFunc(s.Events, func(e struct{ State, Detail string }) bool { return e.State == "auto-reply" }) {
		t.Errorf("the first SMS got no answer: %+v", s.Events)
	}
	s := answered("got it")
	if !slices.ContainsFunc(s.Events, func(e struct{ State, Detail string }) bool {
		return e.State == "no auto-reply" && strings.Contains(e.Detail, "an echo of an auto-reply")
	}) {
		t.Errorf("the echo of the answer is not held back as automatic: %+v", s.Events)
	}
	g.send("pong")
	s = answered("pong")
	if !slices.ContainsFunc(s.Events, func(e struct{ State, Detail string }) bool {
		return e.State == "no auto-reply" && strings.Contains(e.Detail, "already got 1 auto-replies in the last hour (route_reply_limit)")
	}) {
		t.Errorf("a second answer within the hour: %+v", s.Events)
	}
	if n, _ := g.echoes("echo: got it"); n != 1 {
		t.Errorf("%d echoes of the auto-reply, want 1", n)
	}
	if got := strings.Count(g.d.out.String(), "auto-replies to a sender held back"); got != 1 {
		t.Errorf("the log says it %d times, want once", got)
	}
}
