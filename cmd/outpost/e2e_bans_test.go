package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestBansAndAuditEndToEnd is the acceptance of bans and the audit log
// through the real binary, the simulated modem and a real Mosquitto as
// the hub, which is down while everything happens: a number banned by
// the CLI (with who and why, listed) sends HELP: the SMS is stored,
// tagged banned, its history says so, and it gets no auto-reply and no
// copy; a send to it is refused naming the ban; a group send skips it
// and says so; an unban over MQTT lets a send through. outpost audit
// shows each action with who and from where, and --who filters it.
// Then the hub comes up and gets every audit record on <base>audit.
func TestBansAndAuditEndToEnd(t *testing.T) {
	hubb := prepareHub(t, "outpost/gw1/audit")
	dir := t.TempDir()
	device, modem := controlledSim(t, dir)
	g := newGatewayWith(t, device, fmt.Sprintf(`[groups]
ward = ["+15550001111", "+15555550100"]
[[route]]
keyword = "HELP"
reply = "Call 112."
[hub]
url = "tcp://%s"
`, hubb.addr))
	g.start()
	const ann = "+15550001111"
	phoneAnn := &phone{g: g, modem: modem, num: ann}

	if out, errs, code := g.cli("ban", ann, "--reason", "abusive texts", "--by", "desk-anna"); code != 0 || !strings.Contains(out, "done") {
		t.Fatalf("ban: exit %d: %s%s", code, out, errs)
	}
	if out, _, code := g.cli("ban", "list"); code != 0 || !strings.Contains(out, "tel:"+ann) || !strings.Contains(out, "desk-anna") || !strings.Contains(out, "abusive texts") {
		t.Errorf("ban list: exit %d\n%s", code, out)
	}

	in := phoneAnn.says("HELP")
	if len(in.Deliveries) != 0 || !slices.Contains(in.Tags, "banned") || !strings.Contains(event(in, "banned"), "banned by desk-anna") {
		t.Errorf("banned inbound: tags %v, deliveries %+v, events %+v", in.Tags, in.Deliveries, in.Events)
	}
	if e := event(in, "auto-reply"); e != "" {
		t.Errorf("the banned number was answered: %s", e)
	}

	if _, errs, code := g.cli("send", "--to", ann, "--text", "hello"); code != 1 || !strings.Contains(errs, "banned by desk-anna") {
		t.Errorf("send to a banned number: exit %d: %s", code, errs)
	}
	ward := g.send("ward news", "--to", "group:ward")
	if s := g.routedShow(ward); !slices.Equal(recipientsOf(s), []string{"+15555550100"}) || !strings.Contains(event(s, "skipped"), ann+" skipped: banned by desk-anna") {
		t.Errorf("group send: %v %+v", recipientsOf(s), s.Events)
	}

	local, got := g.subscribe("ops-console")
	publishJSON(t, local, "outpost/gw1/admin/unban", `{"addr": "`+ann+`"}`)
	b := &topics{t: t, got: got}
	if r := b.next("admin/unban/reply", func(tp string) bool { return tp == "outpost/gw1/admin/unban/reply" }); r["ok"] != true || r["changed"] != true {
		t.Errorf("admin/unban: %v", r)
	}
	after := g.send("welcome back", "--to", ann)
	night := g.send("night shift", "--by", "night-shift")
	if _, errs, code := g.cli("contact", "add", "Ann", "--phone", ann, "--by", "desk-anna"); code != 0 {
		t.Fatalf("contact add: exit %d: %s", code, errs)
	}

	type entry struct{ Who, Channel, Op, Target, Detail string }
	var audit struct{ Audit []entry }
	out, errs, code := g.cli("audit", "--since", "1h", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &audit) != nil {
		t.Fatalf("audit: exit %d: %s%s", code, out, errs)
	}
	var got2 []string
	for _, e := range audit.Audit {
		got2 = append(got2, e.Op+" "+e.Target+" by "+e.Who+" via "+e.Channel)
	}
	user := "user " + userName()
	want := []string{"ban tel:" + ann + " by desk-anna via cli", "send " + ward + " by " + user + " via cli",
		"unban tel:" + ann + " by mqtt:ops-console via mqtt", "send " + after + " by " + user + " via cli",
		"send " + night + " by night-shift via cli", "contact/add 1 by desk-anna via cli",
		"config " + g.config + " by outpost run via config"} // the first start with this config
	for _, w := range want {
		if !slices.Contains(got2, w) {
			t.Errorf("audit lacks %q:\n%s", w, strings.Join(got2, "\n"))
		}
	}
	if out, _, _ := g.cli("audit", "--who", "DESK"); !strings.Contains(out, "desk-anna") || strings.Contains(out, "mqtt:ops-console") {
		t.Errorf("audit --who DESK:\n%s", out)
	}
	if _, errs, code := g.cli("audit", "--since", "yesterday"); code != 2 || !strings.Contains(errs, "--since") {
		t.Errorf("audit --since yesterday: exit %d: %s", code, errs)
	}

	// The hub comes back: every audit record reaches it.
	hubb.start()
	fromHub := make(chan pahomqtt.Message, 100)
	hubb.client("hq-subscriber", false, fromHub)
	deadline := time.After(30 * time.Second)
	var atHub []string
	for len(atHub) < len(audit.Audit) {
		select {
		case m := <-fromHub:
			var e entry
			if err := json.Unmarshal(m.Payload(), &e); err != nil || m.Topic() != "outpost/gw1/audit" {
				t.Fatalf("at the hub: %s %q", m.Topic(), m.Payload())
			}
			atHub = append(atHub, e.Op+" "+e.Target+" by "+e.Who+" via "+e.Channel)
		case <-deadline:
			t.Fatalf("the hub got %d of %d audit records:\n%s", len(atHub), len(audit.Audit), strings.Join(atHub, "\n"))
		}
	}
	for _, w := range want {
		if !slices.Contains(atHub, w) {
			t.Errorf("the hub lacks %q:\n%s", w, strings.Join(atHub, "\n"))
		}
	}
}
