package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
	_ "modernc.org/sqlite"

	"github.com/outpost-sms/outpost/pdu"
)

// as1970 rewrites every stored time of a stopped daemon's database as a
// box whose clock read 1970 would have recorded it: the run seems to have
// started at 1970-01-01 01:00, the times keep their distances.
func as1970(t *testing.T, dbPath string, started time.Time) {
	t.Helper()
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	by := started.UnixMilli() - time.Hour.Milliseconds()
	for _, c := range []string{"messages.created_at", "messages.not_before", "messages.expires_at",
		"deliveries.next_at", "deliveries.expires_at", "deliveries.updated_at", "events.at",
		"inbound_parts.received_at", "sent_parts.sent_at", "hub_queue.created_at", "orphan_reports.received_at"} {
		table, col, _ := strings.Cut(c, ".")
		if _, err := db.Exec(fmt.Sprintf(`UPDATE %s SET %s = %s - ? WHERE %s != 0`, table, col, col, col), by); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
	}
	var oldest int64
	db.QueryRow(`SELECT MIN(created_at) FROM hub_queue`).Scan(&oldest)
	if at := time.UnixMilli(oldest).UTC(); at.Year() != 1970 {
		t.Fatalf("the hub queue's oldest message is stamped %v", at)
	}
}

// TestClockSetAfterBoot1970 is issue 10's "time is not trusted": a box
// whose clock read 1970 queued messages for the hub (hub away), received
// one part of a long message and took a send for "in 10 minutes, expires
// in 30"; it restarts with the clock set by NTP and the hub back. The hub
// gets every message (none dropped as older than max_age = 1h), the long
// message still waits for its parts and completes when they come, the
// send is still scheduled and expires 30 minutes after it was given, not
// at once.
func TestClockSetAfterBoot1970(t *testing.T) {
	const n = 20
	hubb := prepareHub(t, "field/#")
	dir := t.TempDir()
	device, modem := controlledSim(t, dir)
	g := newGatewayWith(t, device, fmt.Sprintf("[hub]\nurl = \"tcp://%s\"\nmax_age = \"1h\"\n[[hub.forward]]\ntopic = \"field/#\"\nqos = 1\n", hubb.addr))
	started := time.Now()
	g.start()
	local, _ := g.subscribe("sensor-gateway")
	for i := 1; i <= n; i++ {
		if tok := local.Publish("field/clock", 1, false, strconv.Itoa(i)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	local.Disconnect(0)
	text := strings.Repeat("Report from the camp, sent before the clock was set. ", 8)
	parts := phoneParts(t, "+15550003333", pdu.Outgoing{Text: text}, 42)
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	modem.deliver(t, parts[0])
	waitFor(t, "the first part to be stored", 20*time.Second, func() bool { return g.status().Reassembly.Parts == 1 })
	id := g.send("later", "--at", "10m", "--expires", "30m")
	given := time.Now()
	g.d.stop()
	as1970(t, filepath.Join(g.dir, "data", "outpost.db"), started)

	hubb.start()
	got := make(chan pahomqtt.Message, n+10)
	hubb.client("hq-subscriber", false, got)
	g.start()
drain:
	for next := 1; next <= n; {
		select {
		case m := <-got:
			if v, _ := strconv.Atoi(string(m.Payload())); v == next {
				next++
			}
		case <-time.After(20 * time.Second):
			out, _, _ := g.cli("status")
			t.Errorf("the hub got %d of %d messages queued while the clock read 1970\n%s", next-1, n, out)
			break drain
		}
	}

	var v struct {
		State      string
		NotBefore  time.Time `json:"not_before"`
		ExpiresAt  time.Time `json:"expires_at"`
		Deliveries []struct {
			State     string
			NextAt    time.Time `json:"next_at"`
			ExpiresAt time.Time `json:"expires_at"`
		}
	}
	out, _, _ := g.cli("show", id, "--json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Deliveries) != 1 {
		t.Fatalf("show: %v\n%s", err, out)
	}
	// Rebased so that the newest time recorded is the restart: at most
	// the test's own time between the send and the restart is lost.
	near := func(at time.Time, want time.Duration) bool {
		left := time.Until(at)
		return left <= want && left > want-time.Since(given)-5*time.Second
	}
	if v.State != "scheduled" || !near(v.Deliveries[0].ExpiresAt, 30*time.Minute) || !near(v.Deliveries[0].NextAt, 10*time.Minute) ||
		!v.ExpiresAt.Equal(v.Deliveries[0].ExpiresAt) {
		t.Errorf("the send given \"--at 10m --expires 30m\" in 1970 is %s, due at %v, expires at %v (now %v)\n%s",
			v.State, v.Deliveries[0].NextAt, v.Deliveries[0].ExpiresAt, time.Now(), out)
	}

	if s := g.status(); s.Reassembly.Messages != 1 || s.Reassembly.Parts != 1 {
		t.Errorf("the long message received in 1970: %+v, want still waiting for its parts", s.Reassembly)
	}
	modem.deliver(t, parts[1])
	modem.deliver(t, parts[2])
	var in []inboxEntry
	waitFor(t, "the long message in the inbox", 20*time.Second, func() bool {
		in = g.fromInbox("+15550003333")
		return len(in) > 0 && in[0].State == "complete"
	})
	if len(in) != 1 || in[0].Text == nil || *in[0].Text != text {
		t.Errorf("inbox from the sender: %+v", in)
	}
}
