package main

import (
	"slices"
	"strings"
	"testing"
)

// TestNationalStopEndToEnd (#5): with [sms] country_code = "254", a STOP
// that the network delivers from 0712345699 (a national number) opts out
// the contact +254712345699, is confirmed to it by SMS, and group, topic
// and direct sends to it stop; outpost optout list shows it in
// international form, and a send to 00254712345699 is refused too.
func TestNationalStopEndToEnd(t *testing.T) {
	dir := t.TempDir()
	device, modem := controlledSim(t, dir)
	g := newGatewayWith(t, device, "[sms]\ncountry_code = \"254\"\n")
	g.start()
	for _, args := range [][]string{
		{"contact", "add", "Wanjiku", "--phone", "+254712345699"},
		{"contact", "add", "Otieno", "--phone", "0712 345 698"},
		{"group", "add", "staff"},
		{"group", "members", "staff", "--add", "Wanjiku", "--add", "Otieno"},
	} {
		if _, errs, code := g.cli(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
	}
	// The network gives Wanjiku's number in national form; it is stored
	// in its one form, so that every comparison (replies, quotas, stats,
	// searches) finds her.
	wanjiku := &phone{g: g, modem: modem, num: "0712345699", stored: "+254712345699"}
	otieno := &phone{g: g, modem: modem, num: "+254712345698", ref: 100}
	otieno.says("JOIN flood")
	wanjiku.says("JOIN flood")
	stop := wanjiku.says("STOP")
	id, _, ok := strings.Cut(event(stop, "confirmation"), " to ")
	if !ok || !strings.Contains(event(stop, "keyword"), "tel:+254712345699 opted out (STOP)") {
		t.Fatalf("the STOP from 0712345699: %+v", stop.Events)
	}
	if s := g.waitState(id, "sent"); len(s.Deliveries) != 1 || s.Deliveries[0].Recipient != "+254712345699" {
		t.Errorf("the confirmation went to %+v", s.Deliveries)
	}
	if out, _, _ := g.cli("optout", "list"); !strings.Contains(out, "tel:+254712345699") {
		t.Errorf("optout list:\n%s", out)
	}
	for _, to := range []string{"group:staff", "topic:flood"} {
		out, errs, code := g.cli("send", "--to", to, "--text", "meeting", "--no-report")
		if code != 0 {
			t.Fatalf("send to %s: exit %d: %s", to, code, errs)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		s := g.routedShow(lines[len(lines)-1])
		if got := recipientsOf(s); !slices.Equal(got, []string{"+254712345698"}) || !strings.Contains(event(s, "skipped"), "+254712345699 skipped: opted out (STOP on ") {
			t.Errorf("%s went to %v: %+v", to, got, s.Events)
		}
	}
	for _, to := range []string{"+254712345699", "0712345699", "00254712345699", "254712345699"} {
		if _, errs, code := g.cli("send", "--to", to, "--text", "direct"); code != 1 || !strings.Contains(errs, "opted out (STOP on ") {
			t.Errorf("a direct send to %s: exit %d: %s", to, code, errs)
		}
	}
	// Her messages are hers whatever spelling asks: an answer to her
	// STOP goes, and her statistics and search count them.
	if _, errs, code := g.cli("send", "--to", "0712345699", "--text", "sorry to see you go", "--in-reply-to", stop.ID); code != 0 {
		t.Errorf("an answer to her STOP: exit %d: %s", code, errs)
	}
	if out, errs, code := g.cli("stats", "0712345699", "--json"); code != 0 || !strings.Contains(out, `"in": 2`) {
		t.Errorf("stats of 0712345699: want her 2 messages in (JOIN, STOP): exit %d: %s%s", code, out, errs)
	}
	if out, _, _ := g.cli("messages", "--in", "--number", "0712345699", "--json"); strings.Count(out, `"direction": "in"`) != 2 {
		t.Errorf("messages --in --number 0712345699: want her 2 messages:\n%s", out)
	}
}
