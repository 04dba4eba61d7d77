package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// sendAs submits a send from who (its By) to numbers.
func sendAs(h *bridge.Router, who string, to ...string) (string, error) {
	return h.Submit(context.Background(), bridge.SendRequest{To: to, Text: "hello", Source: "mqtt", From: who, By: who})
}

// TestSourceQuotaCountsAndWindows: a source's SMS are counted as accepted
// (a send to 2 numbers counts 2), over sliding windows of an hour and a
// day; the refusal says which bound and when there is room; other sources
// and a [[quota.source]] override are counted apart; the counts survive a
// restart.
func TestSourceQuotaCountsAndWindows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outpost.db")
	clk := &skewed{}
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	clk.set(t0)
	open := func() *bridge.Router {
		st, err := store.Open(context.Background(), path, store.Options{Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		h := bridge.New(st, nil)
		h.Add(&fake{})
		h.Quota = bridge.Quota{SMSPerHour: 3, SMSPerDay: 5, Sources: []bridge.SourceQuota{{Who: "mqtt:vip-*"}}}
		return h
	}
	h := open()
	if _, err := sendAs(h, "mqtt:a", "+15555550101", "+15555550102"); err != nil {
		t.Fatal(err)
	}
	clk.set(t0.Add(10 * time.Minute))
	if _, err := sendAs(h, "mqtt:a", "+15555550103"); err != nil {
		t.Fatal(err)
	}
	_, err := sendAs(h, "mqtt:a", "+15555550104")
	if !errors.Is(err, bridge.ErrQuota) || !errors.Is(err, bridge.ErrInvalid) {
		t.Fatalf("4th SMS in the hour: %v, want ErrQuota", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "mqtt:a had 3 SMS accepted in the last hour") || !strings.Contains(msg, "sms_per_hour = 3") ||
		!strings.Contains(msg, "2026-12-02T11:00:0") {
		t.Fatalf("refusal %q does not say the bound and when there is room (11:00, when the first send leaves the hour)", msg)
	}
	if w := bridge.QuotaWait(err); w < 49*time.Minute || w > 51*time.Minute {
		t.Fatalf("QuotaWait %v, want about 50m", w)
	}
	// More than the bound at once never fits.
	if _, err := sendAs(h, "mqtt:b", "+15555550101", "+15555550102", "+15555550103", "+15555550104"); !errors.Is(err, bridge.ErrQuota) ||
		bridge.QuotaWait(err) != 0 || !strings.Contains(err.Error(), "split it") {
		t.Fatalf("4 SMS at once with sms_per_hour 3: %v", err)
	}
	// Others are counted apart; the override lifts the bounds.
	if _, err := sendAs(h, "mqtt:b", "+15555550101"); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if _, err := sendAs(h, "mqtt:vip-1", fmt.Sprintf("+1555555020%d", i)); err != nil {
			t.Fatalf("vip send %d: %v", i, err)
		}
	}
	// A restart does not reset the counts.
	h.Store.Close()
	clk.set(t0.Add(30 * time.Minute))
	h = open()
	defer h.Store.Close()
	if _, err := sendAs(h, "mqtt:a", "+15555550104"); !errors.Is(err, bridge.ErrQuota) {
		t.Fatalf("after a restart: %v, want ErrQuota", err)
	}
	// An hour after the second send, 2 SMS fit in the hour again; the day
	// then holds 5, and the 6th is refused for the day.
	clk.set(t0.Add(71 * time.Minute))
	if _, err := sendAs(h, "mqtt:a", "+15555550104", "+15555550105"); err != nil {
		t.Fatal(err)
	}
	_, err = sendAs(h, "mqtt:a", "+15555550106")
	if !errors.Is(err, bridge.ErrQuota) || !strings.Contains(err.Error(), "sms_per_day = 5") || !strings.Contains(err.Error(), "2026-12-03T10:00:0") {
		t.Fatalf("6th SMS in the day: %v", err)
	}
}

// TestSourceQuotaConcurrent: sends racing for the last places of a quota
// are checked in the transaction that stores them: exactly the quota
// gets through.
func TestSourceQuotaConcurrent(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Quota = bridge.Quota{SMSPerHour: 5}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, over := 0, 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := sendAs(h, "mqtt:burst", fmt.Sprintf("+155555501%02d", i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, bridge.ErrQuota):
				over++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 5 || over != 15 {
		t.Fatalf("%d accepted, %d refused; want 5 and 15", ok, over)
	}
}

// TestAutomaticSendsBypassSourceQuota: the router's own sends (a STOP's
// confirmation) are not a source's: a quota of 0 room does not stop them.
func TestAutomaticSendsBypassSourceQuota(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Keywords = testKeywords
	h.Quota = bridge.Quota{SMSPerHour: 1, PerNumberPerHour: 1}
	if _, err := sendAs(h, "keyword:STOP", "+15555550190"); err != nil {
		t.Fatal(err)
	}
	// The number has had its one SMS of the hour; its STOP is still
	// confirmed.
	inbound(t, h, "+15555550190", "STOP")
	if got := outTo(t, h, "+15555550190"); len(got) != 2 {
		t.Fatalf("sent to the number: %q, want the send and the STOP's confirmation", got)
	}
}

// TestPerNumberQuota: a number named directly over its hourly bound
// refuses the send; one a group brings is skipped and named in the
// notes; an answer to the number's own message goes all the same (and
// counts).
func TestPerNumberQuota(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Quota = bridge.Quota{PerNumberPerHour: 2}
	h.Groups = map[string][]string{"team": {"+15555550101", "+15555550102"}}
	for i := range 2 {
		if _, err := sendAs(h, fmt.Sprintf("mqtt:c%d", i), "+15555550101"); err != nil {
			t.Fatal(err)
		}
	}
	_, err := sendAs(h, "mqtt:c9", "+15555550101")
	if !errors.Is(err, bridge.ErrQuota) || !strings.Contains(err.Error(), "+15555550101 already got 2 SMS in the last hour (quota.per_number_per_hour = 2)") ||
		bridge.QuotaWait(err) <= 0 {
		t.Fatalf("3rd SMS to the number: %v", err)
	}
	var notes []string
	id, err := h.Submit(context.Background(), bridge.SendRequest{To: []string{"group:team"}, Text: "team", Source: "http", Notes: &notes})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "+15555550101 skipped: ") {
		t.Fatalf("notes %q, want +15555550101 skipped", notes)
	}
	v, err := h.Message(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Deliveries) != 1 || v.Deliveries[0].Recipient != "+15555550102" || !strings.Contains(details(v), "+15555550101 skipped: ") {
		t.Fatalf("deliveries %+v, history:\n%s", v.Deliveries, details(v))
	}
	// A group of numbers all over their bound is refused.
	if _, err := h.Submit(context.Background(), bridge.SendRequest{To: []string{"group:team"}, Text: "team", Source: "http"}); err != nil {
		t.Fatal(err) // +…102 had 1
	}
	if _, err := h.Submit(context.Background(), bridge.SendRequest{To: []string{"group:team"}, Text: "team", Source: "http"}); !errors.Is(err, bridge.ErrQuota) {
		t.Fatalf("group all over: %v", err)
	}
	// The person writes: the answer goes.
	in := inbound(t, h, "+15555550101", "where is the clinic?")
	if _, err := h.Submit(context.Background(), bridge.SendRequest{To: []string{"+15555550101"}, Text: "Main St", Source: "http", InReplyTo: in.ID}); err != nil {
		t.Fatalf("answer to the number's own message: %v", err)
	}
}

// TestQuietHoursHold: during the quiet hours a send below the quiet
// priority is held (scheduled until their end, its history says so) and
// goes then; an urgent one and an answer to a message just received go
// at once.
func TestQuietHoursHold(t *testing.T) {
	f := &fake{}
	h, start := newHub(t, f)
	nairobi, err := time.LoadLocation("Africa/Nairobi")
	if err != nil {
		t.Fatal(err)
	}
	h.Quota = bridge.Quota{Quiet: &bridge.QuietHours{Start: 21 * 60, End: 7 * 60, Loc: nairobi, Priority: 9}}
	clk := useSkewed(h)
	clk.set(time.Date(2026, 12, 2, 22, 30, 0, 0, nairobi))
	start()
	held := submitReq(t, h, bridge.SendRequest{Text: "newsletter"})
	urgent := submitReq(t, h, bridge.SendRequest{Text: "flood warning", Priority: 9})
	in := inbound(t, h, "+15555550100", "is the clinic open tomorrow?")
	answer := submitReq(t, h, bridge.SendRequest{Text: "yes, from 8", InReplyTo: in.ID})
	waitState(t, h, urgent, store.Sent)
	waitState(t, h, answer, store.Sent)
	v, err := h.Message(context.Background(), held)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 12, 3, 7, 0, 0, 0, nairobi)
	if v.State != store.Scheduled || !v.Deliveries[0].NextAt.Equal(end) || !strings.Contains(details(v), "quiet hours until 07:00") {
		t.Fatalf("held send: state %q next %v, history:\n%s", v.State, v.Deliveries[0].NextAt, details(v))
	}
	clk.set(end.Add(time.Second))
	waitState(t, h, held, store.Sent)
	// Outside the quiet hours nothing waits.
	day := submitReq(t, h, bridge.SendRequest{Text: "daytime", Priority: bridge.MinPriority})
	waitState(t, h, day, store.Sent)
}

// TestQuietHoursWindows: when the quiet hours apply, and when they end,
// for spans over midnight and within a day.
func TestQuietHoursWindows(t *testing.T) {
	utc := time.UTC
	at := func(d, hh, mm int) time.Time { return time.Date(2026, 12, d, hh, mm, 0, 0, utc) }
	for _, c := range []struct {
		start, end string
		now        time.Time
		quiet      bool
		until      time.Time
	}{
		{"21:00", "07:00", at(2, 20, 59), false, time.Time{}},
		{"21:00", "07:00", at(2, 21, 0), true, at(3, 7, 0)},
		{"21:00", "07:00", at(3, 3, 0), true, at(3, 7, 0)},
		{"21:00", "07:00", at(3, 7, 0), false, time.Time{}},
		{"12:00", "14:00", at(2, 13, 59), true, at(2, 14, 0)},
		{"12:00", "14:00", at(2, 14, 0), false, time.Time{}},
		{"12:00", "14:00", at(2, 11, 0), false, time.Time{}},
	} {
		var s, e int
		fmt.Sscanf(c.start+" "+c.end, "%d:00 %d:00", &s, &e)
		q := &bridge.QuietHours{Start: s * 60, End: e * 60, Loc: utc, Priority: 9}
		until, quiet := bridge.QuietUntil(q, c.now)
		if quiet != c.quiet || !until.Equal(c.until) {
			t.Errorf("%s-%s at %s: quiet %v until %v, want %v until %v", c.start, c.end, c.now.Format("15:04"), quiet, until, c.quiet, c.until)
		}
	}
}

// TestPriorityNames: names and numbers, in order.
func TestPriorityNames(t *testing.T) {
	for s, want := range map[string]int{"low": -1, "Normal": 0, "high": 5, "URGENT": 9, "7": 7, "-1": -1} {
		if got, err := bridge.ParsePriority(s); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "critical", "10", "-2", "1.5"} {
		if _, err := bridge.ParsePriority(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	for _, c := range []struct {
		body string
		want int
		bad  bool
	}{{`"priority": "high"`, 5, false}, {`"priority": 3`, 3, false}, {`"priority": "low"`, -1, false}, {`"priority": "soon"`, 0, true}, {`"priority": 10`, 0, true}} {
		req, _, err := bridge.ParseSend([]byte(`{"to": "+15555550100", "text": "x", `+c.body+`}`), "mqtt")
		if (err != nil) != c.bad || !c.bad && req.Priority != c.want {
			t.Errorf("%s: priority %d, %v", c.body, req.Priority, err)
		}
	}
	if got := bridge.PriorityName(7); got != "7 (high)" {
		t.Errorf("PriorityName(7) = %q", got)
	}
}

// TestQuietHoursHoldBacklog: what was waiting when the quiet hours began
// (accepted at 20:50 while the modem was away, which comes back at 22:00)
// is held until their end too, unless urgent.
func TestQuietHoursHoldBacklog(t *testing.T) {
	f := &fake{ready: make(chan struct{})}
	h, start := newHub(t, waiting{f})
	h.Quota = bridge.Quota{Quiet: &bridge.QuietHours{Start: 21 * 60, End: 7 * 60, Loc: time.UTC, Priority: 5}}
	clk := useSkewed(h)
	clk.set(time.Date(2026, 12, 2, 20, 50, 0, 0, time.UTC))
	start()
	low := submitReq(t, h, bridge.SendRequest{Text: "reminder"})
	high := submitReq(t, h, bridge.SendRequest{Text: "alert", Priority: 5})
	clk.set(time.Date(2026, 12, 2, 22, 0, 0, 0, time.UTC))
	close(f.ready)
	waitState(t, h, high, store.Sent)
	v := waitState(t, h, low, store.Scheduled)
	if !strings.Contains(details(v), "quiet hours until 07:00 (2026-12-03, UTC; priority normal is below quota.quiet_priority high): held, it was waiting when they began") {
		t.Fatalf("history:\n%s", details(v))
	}
	if f.Calls() != 1 {
		t.Fatalf("%d sent, want the high one only", f.Calls())
	}
	clk.set(time.Date(2026, 12, 3, 7, 0, 1, 0, time.UTC))
	waitState(t, h, low, store.Sent)
}

// TestQuotaClockWentBack: the clock goes back two hours after a source
// used its hour: the counts still hold it, and the wait is what is left
// of the hour in elapsed time, not two hours more.
func TestQuotaClockWentBack(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Quota = bridge.Quota{SMSPerHour: 1}
	clk := useSkewed(h)
	clk.set(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	if _, err := sendAs(h, "mqtt:a", "+15555550101"); err != nil {
		t.Fatal(err)
	}
	clk.step(-2 * time.Hour)
	_, err := sendAs(h, "mqtt:a", "+15555550102")
	if w := bridge.QuotaWait(err); !errors.Is(err, bridge.ErrQuota) || w < 55*time.Minute || w > time.Hour {
		t.Fatalf("after the clock went back: %v, wait %v; want ErrQuota and a wait just under 1h", err, w)
	}
}

// TestQuotaOp: the quota operation says a source's counts and bounds
// (the caller's by default, the rule that applies), a number's hour, and
// the quiet hours; a bad number is refused.
func TestQuotaOp(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Quota = bridge.Quota{SMSPerHour: 5, SMSPerDay: 50, PerNumberPerHour: 3, Sources: []bridge.SourceQuota{{Who: "mqtt:vip-*", SMSPerDay: 1000}},
		Quiet: &bridge.QuietHours{Start: 21 * 60, End: 7 * 60, Loc: time.UTC, Priority: 9}}
	clk := useSkewed(h)
	clk.set(time.Date(2026, 12, 2, 22, 0, 0, 0, time.UTC))
	if _, err := sendAs(h, "mqtt:a", "+15555550101", "+15555550102"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := h.QuotaOp(ctx, nil, "mqtt:a")
	if err != nil || a.Who != "mqtt:a" || a.Rule != "[quota]" || a.SMSLastHour != 2 || a.SMSLastDay != 2 || a.SMSPerHour != 5 || a.SMSPerDay != 50 ||
		!a.QuietUntil.Equal(time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)) || a.QuietHours != "21:00-07:00 UTC below urgent" {
		t.Fatalf("%+v %v", a, err)
	}
	a, err = h.QuotaOp(ctx, []byte(`{"who": "mqtt:vip-7", "number": "tel:+15555550101"}`), "mqtt:a")
	if err != nil || a.Who != "mqtt:vip-7" || !strings.Contains(a.Rule, "[[quota.source]] 1") || a.SMSPerHour != 0 || a.SMSPerDay != 1000 ||
		a.NumberLastHour == nil || *a.NumberLastHour != 1 || a.PerNumberPerHour != 3 {
		t.Fatalf("%+v %v", a, err)
	}
	if _, err := h.QuotaOp(ctx, []byte(`{"number": "mailto:x@example.org"}`), "x"); !errors.Is(err, bridge.ErrInvalid) {
		t.Fatalf("a mail address as number: %v", err)
	}
}
