package main

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

type listed struct {
	Messages []struct {
		ID        string   `json:"id"`
		Direction string   `json:"direction"`
		Peer      string   `json:"peer"`
		State     string   `json:"state"`
		Read      bool     `json:"read"`
		Handled   bool     `json:"handled"`
		Tags      []string `json:"tags"`
	} `json:"messages"`
	Next string `json:"next"`
}

// messages runs outpost messages --json with args and returns the page.
func (g *gateway) messages(args ...string) listed {
	g.t.Helper()
	out, errs, code := g.cli(append([]string{"messages", "--json"}, args...)...)
	if code != 0 {
		g.t.Fatalf("messages %v: exit %d: %s", args, code, errs)
	}
	var l listed
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		g.t.Fatalf("messages output: %v\n%s", err, out)
	}
	return l
}

func (l listed) ids() []string {
	var ids []string
	for _, m := range l.Messages {
		ids = append(ids, m.ID)
	}
	return ids
}

// TestMessagesListMarkRm is issue 12's message management through the
// real binary: outpost messages pages with a cursor that stays right while
// a message arrives between pages, filters by direction, state, number and
// tag; mark marks an inbound message read/handled and tags it (refused on
// an outbound one); rm deletes a message (show no longer finds it).
func TestMessagesListMarkRm(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	one := g.send("one")
	g.waitDelivered(one)
	echo := g.waitEcho("one")
	later := g.send("later", "--to", "+15555550199", "--at", "1h")
	three := g.send("three")
	g.waitDelivered(three)
	g.waitEcho("three")

	all := g.messages("--limit", "1000").ids()
	if len(all) < 5 {
		t.Fatalf("listed %d messages: %v", len(all), all)
	}
	// Pages of 2; a message arrives after the first page.
	var paged []string
	args := []string{"--limit", "2"}
	for page := 0; page < 100; page++ {
		l := g.messages(args...)
		if len(l.Messages) > 2 {
			t.Fatalf("page of %d with --limit 2", len(l.Messages))
		}
		paged = append(paged, l.ids()...)
		if page == 0 {
			g.send("arrives", "--to", "+15555550199", "--at", "2h")
		}
		if l.Next == "" {
			break
		}
		args = []string{"--limit", "2", "--cursor", l.Next}
	}
	if strings.Join(paged, " ") != strings.Join(all, " ") {
		t.Errorf("pages:\n%v\nwant, as one listing before the new message:\n%v", paged, all)
	}

	if ids := g.messages("--out", "--state", "scheduled", "--number", "+15555550199").ids(); len(ids) != 2 || ids[1] != later {
		t.Errorf("scheduled to +15555550199: %v (want the new one, then %s)", ids, later)
	}
	for _, m := range g.messages("--in").Messages {
		if m.Direction != "in" {
			t.Errorf("--in listed %+v", m)
		}
	}

	out, errs, code := g.cli("mark", echo.ID, "--read", "--tag", "vip")
	if code != 0 || !strings.Contains(out, "read; tags vip") {
		t.Errorf("mark: exit %d: %s%s", code, out, errs)
	}
	if l := g.messages("--tag", "vip"); len(l.Messages) != 1 || l.Messages[0].ID != echo.ID || !l.Messages[0].Read || l.Messages[0].Handled {
		t.Errorf("--tag vip: %+v", l)
	}
	for _, id := range g.messages("--in", "--state", "unread").ids() {
		if id == echo.ID {
			t.Errorf("a message marked read is listed unread")
		}
	}
	if out, _, _ := g.cli("messages", "--tag", "vip"); !strings.Contains(out, "read #vip") {
		t.Errorf("messages: %s", out)
	}
	if _, errs, code := g.cli("mark", one, "--handled"); code != 1 || !strings.Contains(errs, "is outbound") {
		t.Errorf("mark an outbound message handled: exit %d, %q", code, errs)
	}
	if _, errs, code := g.cli("mark", echo.ID, "--tag", "a,b"); code != 1 || !strings.Contains(errs, "without a comma") {
		t.Errorf("mark with a bad tag: exit %d, %q", code, errs)
	}
	if _, errs, code := g.cli("messages", "--cursor", "junk"); code != 1 || !strings.Contains(errs, "cursor") {
		t.Errorf("a bad cursor: exit %d, %q", code, errs)
	}
	if _, errs, code := g.cli("messages", "--since", "yesterday"); code != 2 || !strings.Contains(errs, "since") {
		t.Errorf("a bad --since: exit %d, %q", code, errs)
	}
	if ids := g.messages("--since", "1h", "--number", "+15555550199").ids(); len(ids) != 2 {
		t.Errorf("--since 1h: %v", ids)
	}

	if out, errs, code := g.cli("rm", one); code != 0 || out != one+": deleted\n" {
		t.Errorf("rm: exit %d: %s%s", code, out, errs)
	}
	if _, errs, code := g.cli("show", one); code != 1 || !strings.Contains(errs, "no message") {
		t.Errorf("show after rm: exit %d, %q", code, errs)
	}
	if _, errs, code := g.cli("rm", one); code != 1 || !strings.Contains(errs, "no message") {
		t.Errorf("rm again: exit %d, %q", code, errs)
	}
}

// TestRetentionPrunesOldFinished: messages 400 days old are pruned when
// finished (a delivered send and the echo it got back), kept when not (a
// send still scheduled); recent ones are kept; status counts it.
func TestRetentionPrunesOldFinished(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	old := g.send("old")
	g.waitDelivered(old)
	oldEcho := g.waitEcho("old")
	pending := g.send("pending", "--at", "1h")
	recent := g.send("recent")
	g.waitDelivered(recent)
	g.d.stop()

	db, err := sql.Open("sqlite", filepath.Join(g.dir, "data", "outpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	ago := time.Now().Add(-400 * 24 * time.Hour).UnixMilli()
	if _, err := db.Exec(`UPDATE messages SET created_at = ? WHERE id IN (?, ?, ?)`, ago, old, oldEcho.ID, pending); err != nil {
		t.Fatal(err)
	}
	// Two audit entries of 400 days ago (retention.audit, one year by
	// default), before the sends' own.
	if _, err := db.Exec(`INSERT INTO audit (at, who, channel, op, target) VALUES (?1, 'old', 'cli', 'ban', 'tel:+15555550177'), (?1, 'old', 'cli', 'unban', 'tel:+15555550177')`, ago); err != nil {
		t.Fatal(err)
	}
	db.Close()

	g.start("OUTPOST_PRUNE_AFTER=10ms")
	var st struct {
		Retention struct {
			Pruned int64 `json:"messages_pruned"`
			Audit  int64 `json:"audit_pruned"`
			Runs   int   `json:"runs"`
		} `json:"retention"`
	}
	waitFor(t, "a retention run", 20*time.Second, func() bool {
		out, _, _ := g.cli("status", "--json")
		json.Unmarshal([]byte(out), &st)
		return st.Retention.Runs > 0
	})
	if st.Retention.Pruned != 2 || st.Retention.Audit != 2 {
		t.Errorf("pruned %d messages and %d audit entries, want 2 and 2", st.Retention.Pruned, st.Retention.Audit)
	}
	var audit struct{ Audit []struct{ Who, Op string } }
	out, _, _ := g.cli("audit", "--json")
	json.Unmarshal([]byte(out), &audit)
	// The first start's config entry and the 3 sends' are kept.
	if len(audit.Audit) != 4 || audit.Audit[0].Op != "config" || slices.ContainsFunc(audit.Audit, func(e struct{ Who, Op string }) bool { return e.Who == "old" }) {
		t.Errorf("the audit log after pruning: the config's entry and the 3 sends', not the old ones:\n%s", out)
	}
	for _, id := range []string{old, oldEcho.ID} {
		if _, _, code := g.cli("show", id); code != 1 {
			t.Errorf("old finished message %s kept", id)
		}
	}
	for _, id := range []string{pending, recent} {
		if _, errs, code := g.cli("show", id); code != 0 {
			t.Errorf("message %s pruned: %s", id, errs)
		}
	}
	if out, _, _ := g.cli("status"); !strings.Contains(out, "retention: messages kept 8760h0m0s, history 8760h0m0s, audit log 8760h0m0s; pruned since start: 2 message(s), 0 history entr(ies), 2 audit entr(ies)") {
		t.Errorf("status:\n%s", out)
	}
}
