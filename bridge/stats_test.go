package bridge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// TestStatsOperation is issue 12's stats through the router: a number
// given as a send gives it (tel:… or bare) is the same sender; a sent
// and a failed SMS and one inbound make its counts, rate and the sms
// channel's; the window follows the store's clock; bad input is refused
// with its reason.
func TestStatsOperation(t *testing.T) {
	f := &fake{results: []error{nil, bridge.Permanent(errors.New("unassigned number"))}}
	h, start := newHub(t, f)
	h.ModemIDs = []string{"sim0"}
	clk := useSkewed(h)
	start()
	ctx := context.Background()
	sent := submitReq(t, h, bridge.SendRequest{To: []string{"tel:+15555550100"}, Text: "one"})
	waitState(t, h, sent, store.Sent)
	failed := submitReq(t, h, bridge.SendRequest{To: []string{"+15555550100"}, Text: "two"})
	waitState(t, h, failed, store.Failed)
	txt := "hello"
	in := &store.Message{Peer: "+15555550100", Modem: "sim0", Parts: 2, Text: &txt, Source: "sms", FromAddr: "tel:+15555550100", State: store.Complete}
	if err := h.Store.Update(ctx, func(tx *store.Tx) error { return h.StoreInbound(tx, in, "test") }); err != nil {
		t.Fatal(err)
	}

	for _, number := range []string{"+15555550100", "tel:+15555550100", " TEL:+15555550100 "} {
		st, err := h.Stats(ctx, []byte(`{"number": "`+number+`"}`))
		if err != nil {
			t.Fatalf("%s: %v", number, err)
		}
		s := st.Sender
		if s == nil || s.Addr != "tel:+15555550100" || s.In != 1 || s.Out != 2 || s.Succeeded != 1 || s.Failed != 1 ||
			s.SuccessRate == nil || *s.SuccessRate != 0.5 || s.SentTimed != 1 || s.ToSentMS == nil || s.LastSeen.IsZero() ||
			len(s.Days) != 1 || s.Days[0].In != 1 || s.Days[0].Out != 2 || s.Timing == "" {
			t.Errorf("%s: sender %+v", number, s)
		}
		if got := st.Until.Sub(st.Since); got != 7*24*time.Hour {
			t.Errorf("default window %s", got)
		}
		chans := map[string]store.ChannelStats{}
		for _, c := range st.Channels {
			chans[c.Channel] = c
		}
		if c := chans["sms"]; c.In != 1 || c.Out != 2 || c.Failed != 1 || c.Succeeded != 1 {
			t.Errorf("sms channel %+v", c)
		}
		if c := chans["test"]; c.In != 2 {
			t.Errorf("the senders' channel %+v", c)
		}
		if len(st.Modems) != 1 || st.Modems[0].Modem != "sim0" || st.Modems[0].MessagesReceived != 1 || st.Modems[0].PartsReceived != 2 {
			t.Errorf("modems %+v", st.Modems)
		}
	}
	// Another sender's: nothing, not an error.
	if st, err := h.Stats(ctx, []byte(`{"number": "+15555550199", "modem": "sim0"}`)); err != nil || st.Sender.In != 0 || st.Sender.Out != 0 || st.Sender.SuccessRate != nil {
		t.Errorf("another number: %+v, %v", st.Sender, err)
	}

	// Eight days later by the store's clock: out of the default window,
	// in a 9-day one; last seen stays.
	clk.step(8 * 24 * time.Hour)
	st, err := h.Stats(ctx, []byte(`{"number": "+15555550100"}`))
	if err != nil || st.Sender.In != 0 || st.Sender.Out != 0 || st.Sender.LastSeen.IsZero() {
		t.Errorf("8 days later: %+v, %v", st.Sender, err)
	}
	if st, err := h.Stats(ctx, []byte(`{"number": "+15555550100", "since": "9d"}`)); err != nil || st.Sender.In != 1 || st.Sender.Out != 2 {
		t.Errorf("9 days back: %+v, %v", st.Sender, err)
	}

	for body, want := range map[string]string{
		`{"since": "7x"}`:                   `since "7x": want days (7d)`,
		`{"since": "-2h"}`:                  `since "-2h"`,
		`{"since": "2999-01-01T00:00:00Z"}`: `is after now`,
		`{"modem": "m9"}`:                   `modem "m9": no such modem (known: sim0)`,
		`{"number": "group:staff"}`:         `not of a group`,
		`{"number": "+12"}`:                 `"number": bad phone number`,
		`{"number": "+1555", "what": 1}`:    `unknown field "what"`,
		`{"number": "fax:+15555550100"}`:    `unknown scheme "fax"`,
		`[1]`:                               `bad JSON`,
	} {
		_, err := h.Stats(ctx, []byte(body))
		if !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrInvalid with %q", body, err, want)
		}
	}
}
