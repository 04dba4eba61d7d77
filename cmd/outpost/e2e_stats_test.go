package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// statsAnswer is what outpost stats --json prints (bridge.Stats).
type statsAnswer struct {
	OK     bool `json:"ok"`
	Sender *struct {
		Addr           string   `json:"addr"`
		In             int      `json:"in"`
		Out            int      `json:"out"`
		LastSeen       string   `json:"last_seen"`
		Succeeded      int      `json:"succeeded"`
		Failed         int      `json:"failed"`
		SuccessRate    *float64 `json:"success_rate"`
		ToSentMS       *int64   `json:"avg_to_sent_ms"`
		SentTimed      int      `json:"sent_timed"`
		ToDeliveredMS  *int64   `json:"avg_to_delivered_ms"`
		DeliveredTimed int      `json:"delivered_timed"`
		Days           []struct {
			Day     string
			In, Out int
		}
	} `json:"sender"`
	Modems []struct {
		Modem            string   `json:"modem"`
		MessagesSent     int      `json:"messages_sent"`
		PartsSent        int      `json:"parts_sent"`
		MessagesReceived int      `json:"messages_received"`
		PartsReceived    int      `json:"parts_received"`
		PartsFailed      int      `json:"parts_failed"`
		Succeeded        int      `json:"succeeded"`
		Failed           int      `json:"failed"`
		SuccessRate      *float64 `json:"success_rate"`
	} `json:"modems"`
	Channels []struct {
		Channel                    string
		In, Out, Succeeded, Failed int
		SuccessRate                *float64 `json:"success_rate"`
	} `json:"channels"`
}

func (g *gateway) stats(args ...string) statsAnswer {
	g.t.Helper()
	out, errs, code := g.cli(append([]string{"stats", "--json"}, args...)...)
	if code != 0 {
		g.t.Fatalf("stats %q: exit %d: %s", args, code, errs)
	}
	var st statsAnswer
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		g.t.Fatalf("stats output: %v\n%s", err, out)
	}
	return st
}

// TestStatsEndToEnd is issue 12's stats through the real binary and the
// simulated modem: a send to the echo number (delivered, and its echo
// comes in), a send the network fails (no such subscriber: a status
// report "not obtainable"), then outpost stats counts them for each
// number, for the modem and for the channels; bad input exits 2 or 1.
func TestStatsEndToEnd(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	defer g.d.stop()
	ok := g.send("stats one")
	g.waitDelivered(ok)
	g.waitEcho("stats one")
	out, errs, code := g.cli("send", "--to", "+15555550199", "--text", "nobody there")
	if code != 0 {
		t.Fatalf("send: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	g.waitState(lines[len(lines)-1], "failed")

	// The echo number, written as sends take it.
	for _, number := range []string{"+15555550100", "tel:+15555550100"} {
		s := g.stats(number).Sender
		if s == nil || s.Addr != "tel:+15555550100" || s.In != 1 || s.Out != 1 || s.Succeeded != 1 || s.Failed != 0 ||
			s.SuccessRate == nil || *s.SuccessRate != 1 || s.LastSeen == "" || len(s.Days) != 1 || s.Days[0].In != 1 || s.Days[0].Out != 1 ||
			s.SentTimed != 1 || s.ToSentMS == nil || s.DeliveredTimed != 1 || s.ToDeliveredMS == nil || *s.ToDeliveredMS < *s.ToSentMS {
			t.Errorf("stats %s: %+v", number, s)
		}
	}
	if s := g.stats("+15555550199").Sender; s == nil || s.In != 0 || s.Out != 1 || s.Failed != 1 || s.SuccessRate == nil || *s.SuccessRate != 0 ||
		s.LastSeen != "" || s.DeliveredTimed != 0 {
		t.Errorf("stats of the failing number: %+v", s)
	}
	st := g.stats("--since", "1h", "--modem", "sim0")
	if len(st.Modems) != 1 {
		t.Fatalf("modems: %+v", st.Modems)
	}
	if m := st.Modems[0]; m.Modem != "sim0" || m.MessagesSent != 2 || m.PartsSent != 2 || m.MessagesReceived != 1 || m.PartsReceived != 1 ||
		m.PartsFailed != 1 || m.Succeeded != 1 || m.Failed != 1 || m.SuccessRate == nil || *m.SuccessRate != 0.5 {
		t.Errorf("sim0: %+v", m)
	}
	chans := map[string]string{}
	for _, c := range st.Channels {
		b, _ := json.Marshal(c)
		chans[c.Channel] = string(b)
	}
	for ch, want := range map[string]string{
		"sms":  `"In":1,"Out":2,"Succeeded":1,"Failed":1,"success_rate":0.5`, // the echo in; two SMS out, one failed
		"cli":  `"In":2,"Out":0`,                                             // the two sends
		"mqtt": `"In":0,"Out":1,"Succeeded":1,"Failed":0`,                    // the echo published on sms/in
	} {
		if !strings.Contains(chans[ch], want) {
			t.Errorf("channel %s: %s, want %s", ch, chans[ch], want)
		}
	}

	// The table for people.
	out, errs, code = g.cli("stats", "+15555550100")
	t.Logf("outpost stats +15555550100:\n%s", out)
	for _, want := range []string{"tel:+15555550100", "in 1, out 1; last seen", "success rate 100.0%: 1 sent or delivered, 0 failed",
		"average time to delivered (accepted → the network's status report)", "DAY", "MODEM", "sim0", "CHANNEL"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("stats table: exit %d, no %q in:\n%s%s", code, want, out, errs)
		}
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--since", "7x"}, 2, `--since "7x": want days (7d)`},
		{[]string{"a", "b"}, 2, `unexpected argument "b"`},
		{[]string{"--modem", "nosuch"}, 1, `modem "nosuch": no such modem (known: sim0)`},
		{[]string{"+12"}, 1, `bad phone number`},
		{[]string{"group:staff"}, 1, `not of a group`},
	} {
		if _, errs, code := g.cli(append([]string{"stats"}, c.args...)...); code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("stats %q: exit %d, %q; want exit %d with %q", c.args, code, errs, c.code, c.want)
		}
	}
}
