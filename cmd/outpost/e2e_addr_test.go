package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSendAddressesAndOrigin drives the real binary: a send to an address
// no configured connector delivers to exits 1 with the reason and stores
// nothing; every message shows where it came from and what it carries
// (outpost show, --json), and sms/in says it too.
func TestSendAddressesAndOrigin(t *testing.T) {
	g := newGateway(t, "")
	g.start()

	_, errs, code := g.cli("send", "--to", "mailto:x@example.org", "--text", "hi", "--id", "to-mail")
	if want := `"to": mailto:x@example.org: no connector delivers to mailto: addresses (configure [email])`; code != 1 || !strings.Contains(errs, want) {
		t.Errorf("send to mailto: exit %d, %q; want 1 and %q", code, errs, want)
	}
	if _, errs, code := g.cli("show", "to-mail"); code != 1 || !strings.Contains(errs, "no message") {
		t.Errorf("the refused send was stored: exit %d %q", code, errs)
	}
	_, errs, code = g.cli("send", "--to", "+15555550100,fax:123", "--text", "hi")
	if code != 1 || !strings.Contains(errs, `fax:123: unknown scheme "fax"`) {
		t.Errorf("send to fax: exit %d, %q", code, errs)
	}

	c, got := g.subscribe("phone1")
	in := &topics{t: t, got: got}
	publishJSON(t, c, "outpost/gw1/sms/send", `{"to":"tel:+15555550100","text":"origin"}`)
	r := in.next("sms/send/reply", func(topic string) bool { return strings.HasSuffix(topic, "/sms/send/reply") })
	mqttID, _ := r["id"].(string)
	if r["ok"] != true {
		t.Fatalf("reply %v", r)
	}
	echo := in.next("sms/in", func(topic string) bool { return strings.HasSuffix(topic, "/sms/in") })
	if echo["text"] != "echo: origin" || echo["from"] != "+15555550100" || echo["channel"] != "sms" || echo["kind"] != "text" {
		t.Errorf("sms/in %v", echo)
	}

	cliID := g.send("from the command")
	g.waitDelivered(cliID)
	e := g.waitEcho("from the command")
	for _, c := range []struct{ id, channel, from, kind string }{
		{mqttID, "mqtt", "mqtt:phone1", "text"},
		{cliID, "cli", "", "text"},
		{e.ID, "sms", "tel:+15555550100", "text"},
	} {
		out, errs, code := g.cli("show", c.id, "--json")
		var m map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &m) != nil {
			t.Fatalf("show %s --json: exit %d %s%s", c.id, code, out, errs)
		}
		if from, _ := m["from_addr"].(string); m["channel"] != c.channel || m["kind"] != c.kind || from != c.from {
			t.Errorf("show %s --json: channel %v from_addr %v kind %v; want %q %q %q", c.id, m["channel"], m["from_addr"], m["kind"], c.channel, c.from, c.kind)
		}
		out, errs, code = g.cli("show", c.id)
		want := "channel:   " + c.channel + "\nkind:      " + c.kind + "\n"
		if c.from != "" {
			want += "from:      " + c.from + "\n"
		}
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("show %s: exit %d; want %q in\n%s%s", c.id, code, want, out, errs)
		}
	}
}

// show's history names the destination of each line: a message to two
// numbers has a "sending" line for each, and they can be told apart.
func TestShowHistoryNamesDestinations(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	id := g.send("to two", "--to", "+15555550100,+15555550123")
	g.waitDelivered(id)
	out, _, _ := g.cli("show", id)
	for _, to := range []string{"+15555550100", "+15555550123"} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			found = found || len(f) >= 5 && f[2] == "sending" && f[3] == "sms" && f[4] == to
		}
		if !found {
			t.Errorf("no sending line for %s:\n%s", to, out)
		}
	}
}
