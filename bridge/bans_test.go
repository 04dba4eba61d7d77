package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// TestBanInboundAndOutbound: a banned number's SMS is stored, tagged
// banned, with the reason in its history, and gets no delivery (no
// auto-reply, no copy); a send naming it is refused (ErrBanned); a group
// send skips it and says so; unban lifts it. The list says who banned.
func TestBanInboundAndOutbound(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Groups = map[string][]string{"ward": {"+15550001111", "+15550002222"}}
	h.Rules = []bridge.Route{{Keyword: "HELP", Reply: "Call 112."}}
	const ann, bob = "+15550001111", "+15550002222"
	ctx := context.Background()
	ans, err := h.Bans(ctx, "ban", []byte(`{"addr": "`+ann+`", "reason": "abuse"}`), "cli", "alice")
	if err != nil || !ans.Changed {
		t.Fatal(ans, err)
	}
	if ans, _ := h.Bans(ctx, "ban", []byte(`{"addr": "`+ann+`"}`), "cli", "bob"); ans.Changed {
		t.Error("a second ban changed something")
	}
	if _, err := h.Bans(ctx, "ban", []byte(`{"addr": "nonsense"}`), "cli", "alice"); !errors.Is(err, bridge.ErrInvalid) {
		t.Errorf("a bad address: %v", err)
	}
	list, _ := h.Bans(ctx, "ban-list", nil, "http", "x")
	if len(list.Bans) != 1 || list.Bans[0].By != "alice" || list.Bans[0].Reason != "abuse" || list.Bans[0].At.IsZero() {
		t.Fatalf("ban list: %+v", list.Bans)
	}

	v := inbound(t, h, ann, "HELP")
	if len(v.Deliveries) != 0 || !strings.Contains(details(v), "banned by alice") || len(v.Tags) != 1 || v.Tags[0] != "banned" {
		t.Errorf("banned inbound: tags %v, deliveries %+v\n%s", v.Tags, v.Deliveries, details(v))
	}
	if got := outTo(t, h, ann); len(got) != 0 {
		t.Errorf("the banned number was answered: %q", got)
	}
	inbound(t, h, bob, "HELP")
	if got := outTo(t, h, bob); len(got) != 1 || got[0] != "Call 112." {
		t.Errorf("bob's HELP got %q, want the auto-reply", got)
	}

	_, err = h.Submit(ctx, bridge.SendRequest{To: []string{ann}, Text: "hi", Source: "test"})
	if !errors.Is(err, bridge.ErrBanned) || !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), "banned by alice") {
		t.Errorf("a send to a banned number: %v", err)
	}
	id, err := h.Submit(ctx, bridge.SendRequest{To: []string{"group:ward"}, Text: "ward", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := h.Message(ctx, id); len(v.Deliveries) != 1 || v.Deliveries[0].Recipient != bob || !strings.Contains(details(v), ann+" skipped: banned by alice") {
		t.Errorf("the group send: %+v\n%s", v.Deliveries, details(v))
	}

	if _, err := h.Bans(ctx, "ban", []byte(`{"addr": "mailto:spam@example.com"}`), "cli", "alice"); err != nil {
		t.Fatal(err)
	}
	_, err = h.Submit(ctx, bridge.SendRequest{To: []string{bob}, Text: "relay me", Source: "email", From: "mailto:spam@example.com"})
	if !errors.Is(err, bridge.ErrBanned) || !strings.Contains(err.Error(), "the sender mailto:spam@example.com") {
		t.Errorf("a send from a banned sender: %v", err)
	}
	if ans, err := h.Bans(ctx, "unban", []byte(`{"addr": "tel:`+ann+`"}`), "mqtt", "mqtt:ops"); err != nil || !ans.Changed {
		t.Fatal(ans, err)
	}
	if _, err := h.Submit(ctx, bridge.SendRequest{To: []string{ann}, Text: "welcome back", Source: "test"}); err != nil {
		t.Errorf("after unban: %v", err)
	}
}

// TestAuditRecordsActions: a send, a cancel, a retry, a ban and an unban
// each append one entry with who, channel, op and target, in the
// transaction of the change (the OnAuditTx hook sees each); a refused
// send or a cancel that changes nothing appends nothing.
func TestAuditRecordsActions(t *testing.T) {
	f := &fake{results: []error{bridge.Permanent(errors.New("rejected"))}}
	h, start := newHub(t, f)
	var hooked []string
	h.OnAuditTx(func(tx *store.Tx, e store.AuditEntry) error {
		hooked = append(hooked, e.Op)
		return nil
	})
	ctx := context.Background()
	id, err := h.Submit(ctx, bridge.SendRequest{To: []string{"+15550001111"}, Text: "one", Source: "cli", By: "user alice"})
	if err != nil {
		t.Fatal(err)
	}
	start()
	waitState(t, h, id, store.Failed)
	if _, err := h.Retry(bridge.WithOrigin(ctx, "http"), id, "ops desk"); err != nil {
		t.Fatal(err)
	}
	waitState(t, h, id, store.Sent)
	later, err := h.Submit(ctx, bridge.SendRequest{To: []string{"+15550002222"}, Text: "later", Source: "mqtt", From: "mqtt:dev1", NotBefore: h.Store.Now().Add(1e12)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Cancel(bridge.WithOrigin(ctx, "cli"), later, "user bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Cancel(ctx, later, "user bob"); err == nil {
		t.Fatal("a second cancel changed something")
	}
	if _, err := h.Submit(ctx, bridge.SendRequest{To: []string{"+1"}, Text: "bad", Source: "cli"}); err == nil {
		t.Fatal("a bad number was taken")
	}
	if _, err := h.Bans(ctx, "ban", []byte(`{"addr": "+15550003333", "reason": "spam"}`), "mqtt", "mqtt:ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Bans(ctx, "unban", []byte(`{"addr": "+15550003333", "by": "carol"}`), "http", "the HTTP API"); err != nil {
		t.Fatal(err)
	}
	// A tag and a delete are audited too.
	if _, err := h.MarkMessage(bridge.WithOrigin(ctx, "cli"), id, store.Mark{Tag: "checked"}, "user dave"); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteMessage(bridge.WithCaller(ctx, "http", "erin"), later); err != nil {
		t.Fatal(err)
	}
	log, err := h.AuditLog(ctx, bridge.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, fmt.Sprintf("%s|%s|%s|%s", e.Who, e.Channel, e.Op, e.Target))
	}
	want := []string{"user alice|cli|send|" + id, "ops desk|http|retry|" + id, "mqtt:dev1|mqtt|send|" + later,
		"user bob|cli|cancel|" + later, "mqtt:ops|mqtt|ban|tel:+15550003333", "carol|http|unban|tel:+15550003333",
		"user dave|cli|mark|" + id, "erin|http|rm|" + later}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Join(hooked, ",") != "send,retry,send,cancel,ban,unban,mark,rm" {
		t.Errorf("OnAuditTx saw %v", hooked)
	}
	bob, _ := h.Bans(ctx, "audit", []byte(`{"who": "BOB", "since": "1h"}`), "cli", "")
	if len(bob.Audit) != 1 || bob.Audit[0].Op != "cancel" {
		t.Errorf("audit of bob: %+v", bob.Audit)
	}
}

// TestAuditPeopleAndContacts: an opt-out by the API (with the caller of
// its context), a STOP by SMS (by the number), a contact added, a
// group's members changed and a group removed are audited; reading a
// group's members is not.
func TestAuditPeopleAndContacts(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Keywords = testKeywords
	ctx := bridge.WithCaller(context.Background(), "mqtt", "mqtt:ops/console")
	if _, err := h.People(ctx, "optout-add", []byte(`{"addr": "+15550002222"}`), "mqtt"); err != nil {
		t.Fatal(err)
	}
	inbound(t, h, "+15550001111", "STOP")
	if _, err := h.AddContact(ctx, bridge.ContactInput{Name: ptr("Ann"), Phones: &[]string{"+15550001111"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddGroup(ctx, "ward"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.GroupMembers(ctx, "ward", []string{"Ann"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.GroupMembers(ctx, "ward", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.RemoveGroup(ctx, "ward"); err != nil {
		t.Fatal(err)
	}
	log, err := h.AuditLog(context.Background(), bridge.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, fmt.Sprintf("%s|%s|%s|%s", e.Who, e.Channel, e.Op, e.Target))
	}
	want := []string{"mqtt:ops/console|mqtt|optout-add|tel:+15550002222", "tel:+15550001111|sms|optout-add|tel:+15550001111",
		"mqtt:ops/console|mqtt|contact/add|1", "mqtt:ops/console|mqtt|group/add|ward", "mqtt:ops/console|mqtt|group/members|ward",
		"mqtt:ops/console|mqtt|group/rm|ward"}
	// The STOP's confirmation is a send of its own (by the keyword).
	got = slices.DeleteFunc(got, func(s string) bool { return strings.Contains(s, "|send|") })
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func ptr[T any](v T) *T { return &v }

// TestAuditConfig: a start with a config unlike the last start's is
// audited (the first start too), with the file and both digests; a
// start with the same config is not.
func TestAuditConfig(t *testing.T) {
	h, _ := newHub(t, &fake{})
	var hooked int
	h.OnAuditTx(func(tx *store.Tx, e store.AuditEntry) error {
		hooked++
		return nil
	})
	ctx := context.Background()
	for _, c := range []struct {
		file, digest string
		want         bool
	}{
		{"/etc/outpost.toml", "sha256:aaaa", true},
		{"/etc/outpost.toml", "sha256:aaaa", false},
		{"/etc/outpost.toml", "sha256:bbbb", true},
		{"", "sha256:bbbb", false},
	} {
		got, err := h.AuditConfig(ctx, c.file, c.digest)
		if err != nil || got != c.want {
			t.Errorf("AuditConfig(%q, %q) = %v, %v; want %v", c.file, c.digest, got, err, c.want)
		}
	}
	log, err := h.AuditLog(ctx, bridge.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, fmt.Sprintf("%s|%s|%s|%s|%s", e.Who, e.Channel, e.Op, e.Target, e.Detail))
	}
	want := []string{
		"outpost run|config|config|/etc/outpost.toml|sha256:aaaa (the first start)",
		"outpost run|config|config|/etc/outpost.toml|sha256:bbbb (changed since the last start: was sha256:aaaa)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || hooked != 2 {
		t.Errorf("audit log (%d to the hub):\n%s\nwant:\n%s", hooked, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
