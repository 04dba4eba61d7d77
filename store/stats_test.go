package store

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStatsCounts builds a week of one number's traffic at the fake
// clock's times and checks what SenderStats, ModemStats and
// ChannelStats count, and that what is older than the window is left
// out.
func TestStatsCounts(t *testing.T) {
	s := openTest(t)
	day0 := set.Truncate(24 * time.Hour).Add(10 * time.Hour)
	clk := fakeClock(s, day0.Add(-10*24*time.Hour))
	const num = "+15550001111"
	in := func(modem, channel string, parts int) {
		update(t, s, func(tx *Tx) error {
			return tx.InsertMessage(&Message{Direction: In, Peer: num, Modem: modem, Parts: parts, State: Complete, Text: text("hi"),
				Channel: channel, FromAddr: "tel:" + num})
		})
	}
	type step struct {
		after time.Duration
		state string
		part  string // sent or failed: a part handed to sim0 first
	}
	// out stores a send request to num from the cli and plays its
	// delivery's life: each step after the previous one.
	out := func(steps ...step) {
		var did int64
		var mid string
		update(t, s, func(tx *Tx) error {
			m := &Message{Direction: Out, Peer: num, Text: text("x"), Channel: "cli"}
			if err := tx.InsertMessage(m); err != nil {
				return err
			}
			mid = m.ID
			d := &Delivery{MessageID: m.ID, Connector: "sms", Recipient: num}
			err := tx.InsertDelivery(d, "")
			did = d.ID
			return err
		})
		for _, st := range steps {
			clk.Advance(st.after)
			update(t, s, func(tx *Tx) error {
				if st.part != "" {
					if err := tx.RecordSentPart(SentPart{DeliveryID: did, Seq: 1, Total: 1, Modem: "sim0", MR: 1, Recipient: num, State: st.part}); err != nil {
						return err
					}
				}
				_, err := tx.SetDeliveryState(did, Transition{State: st.state})
				return err
			})
		}
		_ = mid
	}
	// Ten days ago: outside a 7-day window.
	in("sim0", "sms", 1)
	out(step{time.Second, Sent, Sent})
	clk.Set(day0.Add(-2 * 24 * time.Hour))
	in("sim0", "sms", 2)
	out(step{2 * time.Second, Sent, Sent}, step{8 * time.Second, Delivered, ""}) // sent after 2 s, delivered after 10 s
	clk.Set(day0)
	in("sim1", "sms", 1)
	out(step{4 * time.Second, Sent, Sent})                              // sent after 4 s, no report
	out(step{time.Second, Sent, Failed}, step{time.Second, Failed, ""}) // the network failed it
	out()                                                               // still queued
	out(step{time.Second, Cancelled, ""})                               // cancelled
	update(t, s, func(tx *Tx) error {                                   // someone else's traffic
		return tx.InsertMessage(&Message{Direction: Out, Peer: "+15550002222", Text: text("y"), Channel: "http"})
	})
	clk.Advance(time.Minute)

	var st SenderStats
	var mods []ModemStats
	var chans []ChannelStats
	since := clk.Now().Add(-7 * 24 * time.Hour)
	if err := s.View(t.Context(), func(tx *Tx) (err error) {
		if st, err = tx.SenderStats("tel:"+num, "sms", num, since, time.UTC); err != nil {
			return err
		}
		if mods, err = tx.ModemStats(since, ""); err != nil {
			return err
		}
		chans, err = tx.ChannelStats(since)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if st.In != 2 || st.Out != 5 || st.Succeeded != 2 || st.Failed != 1 || st.Pending != 1 || st.Cancelled != 1 {
		t.Errorf("sender: %+v", st)
	}
	if st.SuccessRate == nil || fmt.Sprintf("%.3f", *st.SuccessRate) != "0.667" {
		t.Errorf("success rate %v, want 2/3", st.SuccessRate)
	}
	if st.ToSentMS == nil || *st.ToSentMS != 3000 || st.SentTimed != 2 {
		t.Errorf("to sent: %v over %d, want 3000 ms over 2", st.ToSentMS, st.SentTimed)
	}
	if st.ToDeliveredMS == nil || *st.ToDeliveredMS != 10000 || st.DeliveredTimed != 1 {
		t.Errorf("to delivered: %v over %d, want 10000 ms over 1", st.ToDeliveredMS, st.DeliveredTimed)
	}
	d2, d0 := day0.Add(-2*24*time.Hour).Format(time.DateOnly), day0.Format(time.DateOnly)
	if fmt.Sprint(st.Days) != fmt.Sprintf("[{%s 1 1} {%s 1 4}]", d2, d0) {
		t.Errorf("days: %v", st.Days)
	}
	if !st.LastSeen.Equal(day0) {
		t.Errorf("last seen %v, want %v", st.LastSeen, day0)
	}
	if len(mods) != 2 {
		t.Fatalf("modems: %+v", mods)
	}
	m0, m1 := mods[0], mods[1]
	if m0.Modem != "sim0" || m0.MessagesSent != 3 || m0.PartsSent != 3 || m0.PartsFailed != 1 || m0.Succeeded != 2 || m0.Failed != 1 ||
		m0.MessagesReceived != 1 || m0.PartsReceived != 2 {
		t.Errorf("sim0: %+v", m0)
	}
	if m1.Modem != "sim1" || m1.MessagesReceived != 1 || m1.MessagesSent != 0 || m1.SuccessRate != nil {
		t.Errorf("sim1: %+v", m1)
	}
	byName := map[string]ChannelStats{}
	for _, c := range chans {
		byName[c.Channel] = c
	}
	if c := byName["sms"]; c.In != 2 || c.Out != 5 || c.Failed != 1 || c.Succeeded != 2 || c.Pending != 1 {
		t.Errorf("sms: %+v", c)
	}
	if c := byName["cli"]; c.In != 5 || c.Out != 0 {
		t.Errorf("cli: %+v", c)
	}
	if c := byName["http"]; c.In != 1 {
		t.Errorf("http: %+v", c)
	}
	if c, ok := byName["webhook"]; !ok || c.In != 0 {
		t.Errorf("webhook: %+v", c)
	}
	// One modem asked for.
	if err := s.View(t.Context(), func(tx *Tx) (err error) { mods, err = tx.ModemStats(since, "sim1"); return }); err != nil {
		t.Fatal(err)
	}
	if len(mods) != 1 || mods[0].Modem != "sim1" || mods[0].MessagesReceived != 1 {
		t.Errorf("sim1 alone: %+v", mods)
	}
}

// TestStatsQueriesUseIndexes checks the plan of every statistics query:
// each table is searched through an index (a range or a lookup), none
// is scanned whole.
func TestStatsQueriesUseIndexes(t *testing.T) {
	s := openTest(t)
	for name, q := range statsQueries {
		n := strings.Count(q, "?")
		args := make([]any, n)
		for i := range args {
			args[i] = ""
		}
		rows, err := s.DB().Query(`EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, line := range plan {
			// A subquery's rows (a co-routine) are read in turn.
			if strings.HasPrefix(line, "SCAN ") && !slices.Contains(plan, "CO-ROUTINE "+strings.TrimPrefix(line, "SCAN ")) {
				t.Errorf("%s scans: %q (plan: %q)", name, line, plan)
			}
		}
		t.Logf("%s: %q", name, plan)
	}
}
