package bridge_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

var testKeywords = []bridge.KeywordSet{
	{Name: "en", StopReply: "Stopped.", StartReply: "Started.", JoinReply: "Joined {topic}.", LeaveReply: "Left {topic}."},
	{Name: "sw", Join: []string{"INGIA"}, Leave: []string{"TOKA"}, Stop: []string{"ACHA"},
		StopReply: "Umesimamishwa.", StartReply: "Karibu tena.", JoinReply: "Umejiunga na {topic}.", LeaveReply: "Umetoka {topic}."},
}

// inbound stores an SMS from a number as the SMS connector does.
func inbound(t *testing.T, h *bridge.Router, from, text string) bridge.MessageView {
	t.Helper()
	ctx := context.Background()
	m := &store.Message{Peer: from, FromAddr: "tel:" + from, Source: "sms", State: store.Complete, Text: &text}
	if err := h.Store.Update(ctx, func(tx *store.Tx) error { return h.StoreInbound(tx, m, "test") }); err != nil {
		t.Fatal(err)
	}
	v, err := h.Message(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// outTo lists the texts of the messages sent to a number, oldest first.
func outTo(t *testing.T, h *bridge.Router, number string) []string {
	t.Helper()
	var out []string
	err := h.Store.View(context.Background(), func(tx *store.Tx) error {
		ms, err := tx.Messages(store.Out, 1000)
		for _, m := range ms {
			ds, err := tx.Deliveries(m.ID)
			if err != nil {
				return err
			}
			for _, d := range ds {
				if d.Recipient == number && m.Text != nil {
					out = append(out, *m.Text)
				}
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(out)
	return out
}

// TestOptOutIsAbsolute: STOP from a number is confirmed once (a second
// STOP gets no answer); then a group, a topic and a route's auto-reply
// skip it (the histories say why), a direct send is refused with the
// reason unless it answers that number's own message; START is
// confirmed, and everything reaches it again. JOIN/LEAVE (and the
// configured INGIA/TOKA, confirmed in their language) make a topic's
// subscribers; a send to topic: reaches them only.
func TestOptOutIsAbsolute(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Keywords = testKeywords
	h.Groups = map[string][]string{"nurses": {"+15550001111", "+15550002222"}}
	h.Rules = []bridge.Route{{Keyword: "HELP", Reply: "Call 112."}}
	const ann, bob, cid = "+15550001111", "+15550002222", "+15550003333"
	ctx := context.Background()

	inbound(t, h, ann, "JOIN flood")
	inbound(t, h, bob, "ingia FLOOD")
	inbound(t, h, cid, "JOIN other")
	if v := inbound(t, h, ann, "join Flood"); !strings.Contains(details(v), "no change") {
		t.Errorf("a second JOIN is not a change:\n%s", details(v))
	}
	if got := outTo(t, h, ann); !slices.Equal(got, []string{"Joined flood."}) {
		t.Errorf("ann got %q, want one confirmation", got)
	}
	if got := outTo(t, h, bob); !slices.Equal(got, []string{"Umejiunga na flood."}) {
		t.Errorf("bob got %q, want the Swahili confirmation", got)
	}
	id, err := h.Submit(ctx, bridge.SendRequest{To: []string{"topic:FLOOD"}, Text: "river rising", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := h.Message(ctx, id)
	var to []string
	for _, d := range v.Deliveries {
		to = append(to, d.Recipient)
	}
	if !slices.Equal(to, []string{ann, bob}) {
		t.Errorf("topic:FLOOD went to %v, want its subscribers %v", to, []string{ann, bob})
	}

	stop := inbound(t, h, ann, "Stop.")
	if again := inbound(t, h, ann, "STOP"); !strings.Contains(details(again), "no confirmation") {
		t.Errorf("the second STOP:\n%s", details(again))
	}
	if got := outTo(t, h, ann); !slices.Equal(got, []string{"Joined flood.", "river rising", "Stopped."}) {
		t.Errorf("ann got %q, want one STOP confirmation", got)
	}
	for _, to := range []string{"group:nurses", "topic:flood"} {
		id, err := h.Submit(ctx, bridge.SendRequest{To: []string{to}, Text: "to " + to, Source: "test"})
		if err != nil {
			t.Fatalf("%s: %v", to, err)
		}
		v, _ := h.Message(ctx, id)
		if len(v.Deliveries) != 1 || v.Deliveries[0].Recipient != bob || !strings.Contains(details(v), ann+" skipped: opted out (STOP on ") {
			t.Errorf("%s did not skip %s with the reason: %+v\n%s", to, ann, v.Deliveries, details(v))
		}
	}
	if v := inbound(t, h, ann, "HELP"); !strings.Contains(details(v), "no auto-reply") || !strings.Contains(details(v), "opted out") {
		t.Errorf("the auto-reply went to an opted-out number:\n%s", details(v))
	}
	_, err = h.Submit(ctx, bridge.SendRequest{To: []string{ann}, Text: "direct", Source: "test"})
	if !errors.Is(err, bridge.ErrOptedOut) || !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), "in_reply_to") {
		t.Errorf("a direct send to an opted-out number: %v", err)
	}
	other := inbound(t, h, bob, "hello")
	if _, err := h.Submit(ctx, bridge.SendRequest{To: []string{ann}, Text: "direct", Source: "test", InReplyTo: other.ID}); !errors.Is(err, bridge.ErrOptedOut) {
		t.Errorf("in_reply_to another number's message let it through: %v", err)
	}
	if _, err := h.Submit(ctx, bridge.SendRequest{To: []string{ann}, Text: "answer", Source: "test", InReplyTo: stop.ID}); err != nil {
		t.Errorf("a reply to her own message: %v", err)
	}
	if got := outTo(t, h, ann); !slices.Equal(got, []string{"Joined flood.", "river rising", "Stopped.", "answer"}) {
		t.Errorf("ann got %q", got)
	}

	inbound(t, h, ann, "START")
	if _, err := h.Submit(ctx, bridge.SendRequest{To: []string{ann}, Text: "welcome back", Source: "test"}); err != nil {
		t.Errorf("after START: %v", err)
	}
	inbound(t, h, ann, "TOKA flood")
	if got := outTo(t, h, ann); !slices.Equal(got, []string{"Joined flood.", "river rising", "Stopped.", "answer", "Started.", "welcome back", "Umetoka flood."}) {
		t.Errorf("ann got %q", got)
	}
	var log []store.PeopleChange
	if err := h.Store.View(ctx, func(tx *store.Tx) (err error) { log, err = tx.PeopleLog("tel:"+ann, 0); return }); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, c := range log {
		actions = append(actions, c.Action+" "+c.Topic)
	}
	if want := []string{"join flood", "optout ", "optin ", "leave flood"}; !slices.Equal(actions, want) {
		t.Errorf("recorded %q, want %q", actions, want)
	}
	// "Cancel my appointment" is no opt-out: STOP is the whole text.
	inbound(t, h, bob, "Cancel my appointment")
	if _, err := h.Submit(ctx, bridge.SendRequest{To: []string{bob}, Text: "ok", Source: "test"}); err != nil {
		t.Errorf("a sentence starting with CANCEL opted out: %v", err)
	}
}

// TestAutoReplyNeverAnswersAutomatic: one automatic answer per number
// per window (ReplyLimit 1), none to a short code, none to a message that
// repeats the answer (an echo).
func TestAutoReplyNeverAnswersAutomatic(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Rules = []bridge.Route{{Reply: "got it"}}
	h.ReplyLimit = 1
	replied := func(v bridge.MessageView) bool {
		return strings.Contains("\n"+details(v), "\nauto-reply: route 1:")
	}
	if v := inbound(t, h, "+15550001111", "ping"); !replied(v) {
		t.Errorf("no answer to the first message:\n%s", details(v))
	}
	if v := inbound(t, h, "+15550001111", "ping again"); replied(v) || !strings.Contains(details(v), "already got 1 auto-replies in the last hour") {
		t.Errorf("a second answer in the window:\n%s", details(v))
	}
	if v := inbound(t, h, "+15550002222", "echo: Got it"); replied(v) || !strings.Contains(details(v), "an echo of an auto-reply") {
		t.Errorf("an echo was answered:\n%s", details(v))
	}
	if v := inbound(t, h, "12345", "hi"); replied(v) || !strings.Contains(details(v), "12345 is not a full international number") {
		t.Errorf("a short code was answered:\n%s", details(v))
	}
}

// TestOptOutStopsWhatIsQueued: a broadcast still in the queue when a
// number opts out does not go to it (failed, with the reason); the
// confirmation of its STOP and the other recipients still go.
func TestOptOutStopsWhatIsQueued(t *testing.T) {
	f := &fake{ready: make(chan struct{})}
	h, start := newHub(t, waiting{f})
	h.Keywords = testKeywords
	h.Groups = map[string][]string{"nurses": {"+15550001111", "+15550002222"}}
	changes := make(chan bridge.StatusChange, 100)
	h.OnStatus(func(c bridge.StatusChange) { changes <- c })
	start()
	ctx := context.Background()
	id, err := h.Submit(ctx, bridge.SendRequest{To: []string{"group:nurses"}, Text: "meeting at 3", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	stop := inbound(t, h, "+15550001111", "STOP")
	close(f.ready) // the modem is back
	done := map[string]bool{}
	for len(done) < 2 {
		select {
		case c := <-changes:
			if c.MessageID == id && (c.State == store.Sent || c.State == store.Failed) {
				done[c.To] = true
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the broadcast's deliveries did not end: %v", done)
		}
	}
	v, err := h.Message(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range v.Deliveries {
		want := store.Sent
		if d.Recipient == "+15550001111" {
			want = store.Failed
			if !strings.Contains(d.LastError, "opted out (STOP on ") {
				t.Errorf("the reason: %q", d.LastError)
			}
		}
		if d.State != want {
			t.Errorf("%s: %s, want %s", d.Recipient, d.State, want)
		}
	}
	c := strings.TrimSuffix(strings.SplitN(strings.Split(details(stop), "confirmation: ")[1], " to ", 2)[0], "\n")
	waitState(t, h, c, store.Sent)
}

// An echo is the reply as a whole: "OK" is repeated by "echo: ok!" and
// not by "book".
func TestAutoReplyEchoIsWholeWords(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Rules = []bridge.Route{{Reply: "OK"}}
	h.ReplyLimit = 0
	for text, echo := range map[string]bool{"echo: ok!": true, "OK": true, "I booked it": false, "ok then": true, "tokens": false} {
		v := inbound(t, h, "+15550001111", text)
		if got := strings.Contains(details(v), "an echo of an auto-reply"); got != echo {
			t.Errorf("%q taken as an echo: %v, want %v\n%s", text, got, echo, details(v))
		}
	}
}
