package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge/xmpp/xmpptest"
	"github.com/outpost-sms/outpost/hw/sim"
	"github.com/outpost-sms/outpost/store"
)

type balanceView struct {
	Amount   *float64 `json:"amount"`
	Currency string   `json:"currency"`
	Text     string   `json:"text"`
	Low      bool     `json:"low"`
	Paused   string   `json:"paused"`
	Error    string   `json:"error"`
}

func (g *gateway) balance(modem string) balanceView {
	g.t.Helper()
	out, errs, code := g.cli("status", "--json")
	if code != 0 {
		g.t.Fatalf("status: exit %d: %s", code, errs)
	}
	var st struct {
		Modems map[string]struct {
			Balance *balanceView `json:"balance"`
		} `json:"modems"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		g.t.Fatalf("status: %v\n%s", err, out)
	}
	if b := st.Modems[modem].Balance; b != nil {
		return *b
	}
	return balanceView{}
}

func (b balanceView) is(amount float64) bool { return b.Amount != nil && *b.Amount == amount }

// alerts counts the echoes of the low balance alerts in the inbox.
func (g *gateway) alerts() int {
	n := 0
	for _, m := range g.inbox() {
		if m.Text != nil && strings.HasPrefix(*m.Text, "echo: Outpost gw1: the balance of modem m1 is") {
			n++
		}
	}
	return n
}

// TestUSSDAndCredit runs the real binary against "outpost sim" on a pty:
// the balance is read by USSD and parsed; a two-step menu is answered
// from the CLI; an SMS sent while the network prepares a slow USSD
// answer goes out at once and the answer is still right; a balance below
// low_balance pauses the modem (a message waits queued, not failed, the
// reason in its history) and alerts once (to the echo number, through
// the paused modem: alerts may use it); a balance read above it resumes
// sending. The balance survives in the database.
func TestUSSDAndCredit(t *testing.T) {
	dir := t.TempDir()
	dev, simProc := controlledSim(t, dir)
	control := func(line string) {
		t.Helper()
		if _, err := fmt.Fprintln(simProc.stdin, line); err != nil {
			t.Fatal(err)
		}
	}
	g := newGatewayWith(t, dev, `balance_ussd = "*100#"
balance_every = "2s"
low_balance = 50
pause_on_low_balance = true
low_balance_alert = ["+15555550100"]
`)
	g.start("OUTPOST_RETRY=50ms,500ms")
	c, got := g.subscribe("watcher")
	_ = c

	// The balance, read and parsed.
	var b balanceView
	waitFor(t, "the first balance check", 20*time.Second, func() bool { b = g.balance("m1"); return b.is(100) })
	if b.Currency != "KES" || b.Text != sim.BalanceText(100) || b.Low || b.Paused != "" {
		t.Fatalf("balance %+v", b)
	}
	if out, _, _ := g.cli("status"); !strings.Contains(out, "100.00 KES, read") {
		t.Errorf("status does not show the balance:\n%s", out)
	}
	if out, _, _ := g.cli("modems"); !strings.Contains(out, "balance: 100.00 KES, read") {
		t.Errorf("outpost modems does not show the balance as status does:\n%s", out)
	}
	mt := &topics{t: t, got: got}
	waitFor(t, "the retained modem topic with the balance", 20*time.Second, func() bool {
		v := mt.next("modem status", func(tp string) bool { return tp == "outpost/gw1/modem/m1/status" })
		bal, _ := v["balance"].(map[string]any)
		return bal != nil && bal["amount"] == 100.0 && bal["currency"] == "KES"
	})

	// A two-step menu from the CLI.
	out, errs, code := g.cli("ussd", "m1", sim.MenuCode, "2", "1")
	if code != 0 {
		t.Fatalf("ussd menu: exit %d: %s%s", code, out, errs)
	}
	for _, want := range []string{"1. Balance\n2. Bundles\n(waiting for an answer)\n> 2\n", "1. Daily\n2. Weekly\n(waiting for an answer)\n> 1\n", "Daily bundle activated\n(done)"} {
		if !strings.Contains(out, want) {
			t.Errorf("ussd menu output lacks %q:\n%s", want, out)
		}
	}
	if _, errs, code := g.cli("ussd", "m1", "*999#"); code != 1 || !strings.Contains(errs, "not supported") {
		t.Errorf("unknown code: exit %d: %s", code, errs)
	}
	if _, errs, code := g.cli("ussd", "m9", "*100#"); code != 1 || !strings.Contains(errs, `no modem "m9"`) {
		t.Errorf("unknown modem: exit %d: %s", code, errs)
	}
	if _, errs, code := g.cli("ussd", "m1", `*1"#`); code != 1 || !strings.Contains(errs, "printable ASCII") {
		t.Errorf("bad code: exit %d: %s", code, errs)
	}
	if out, _, _ := g.cli("audit", "--who", "user"); !strings.Contains(out, "ussd") || !strings.Contains(out, "code *123#, 2 answer(s)") {
		t.Errorf("the menu session is not audited:\n%s", out)
	}

	// SMS flow on the same modem during a slow USSD session.
	control("ussd-delay 3s")
	type result struct {
		out  string
		code int
		at   time.Time
	}
	done := make(chan result, 1)
	go func() {
		out, _, code := cli(t, g.dir, "ussd", "m1", sim.BalanceCode, "--config", g.config)
		done <- result{out, code, time.Now()}
	}()
	time.Sleep(500 * time.Millisecond)
	id := g.send("during ussd")
	var sentAt time.Time
	waitFor(t, "the SMS to go out", 20*time.Second, func() bool {
		s := g.show(id)
		sentAt = time.Now()
		return s.State == "sent" || s.State == "delivered"
	})
	r := <-done
	if r.code != 0 || !strings.Contains(r.out, sim.BalanceText(100)) {
		t.Fatalf("slow ussd: exit %d:\n%s", r.code, r.out)
	}
	if !sentAt.Before(r.at) {
		t.Errorf("the SMS went out after the USSD session (%s), not during it", r.at.Sub(sentAt))
	}
	t.Logf("the SMS was sent at least %s before the slow USSD answer", r.at.Sub(sentAt).Round(time.Millisecond))
	g.waitEcho("during ussd")
	control("ussd-delay 0")

	// Low balance: paused, one alert, messages wait.
	control("balance 20")
	waitFor(t, "the low balance", 20*time.Second, func() bool { b = g.balance("m1"); return b.is(20) })
	if !b.Low || !strings.Contains(b.Paused, "balance 20.00 KES is below low_balance 50") {
		t.Fatalf("balance %+v", b)
	}
	waitFor(t, "the alert's echo", 30*time.Second, func() bool { return g.alerts() == 1 })
	id = g.send("while low")
	var s shown
	waitFor(t, "the message held back for the balance", 20*time.Second, func() bool {
		s = g.show(id)
		return hasEvent(s, "paused: balance 20.00 KES is below low_balance 50")
	})
	// Three more checks below the threshold: no second alert, the
	// message still waits with its attempts unused.
	if out, _, _ := g.cli("status"); !strings.Contains(out, "sending paused: balance 20.00 KES") {
		t.Errorf("status does not say why the modem is paused:\n%s", out)
	}
	checks := strings.Count(g.d.out.String(), "balance read")
	waitFor(t, "three more balance checks", 30*time.Second, func() bool { return strings.Count(g.d.out.String(), "balance read") >= checks+3 })
	if n := g.alerts(); n != 1 {
		t.Errorf("%d alerts for one crossing", n)
	}
	// The sms lane retries as after an outage (here every 500 ms at
	// most), each try put back uncounted: the message may be caught
	// between the two, so it is looked at until it is seen waiting.
	waitFor(t, "the message to wait with its attempts unused", 10*time.Second, func() bool {
		s = g.show(id)
		if s.State != "queued" && s.State != "sending" || s.Deliveries[0].Attempts > 1 {
			t.Fatalf("while low: state %s, attempts %d (want queued, 0); history %+v", s.State, s.Deliveries[0].Attempts, s.Events)
		}
		return s.State == "queued" && s.Deliveries[0].Attempts == 0
	})

	// Credit again: the message goes; a new crossing alerts again.
	control("balance 80")
	s = g.waitDelivered(id)
	if s.Deliveries[0].Attempts != 1 {
		t.Errorf("attempts %d after the balance was back, want 1", s.Deliveries[0].Attempts)
	}
	if b = g.balance("m1"); b.Low || b.Paused != "" {
		t.Fatalf("balance %+v", b)
	}
	control("balance 10")
	waitFor(t, "the second crossing's alert", 30*time.Second, func() bool { return g.alerts() == 2 })

	// The balance is in the database.
	g.d.stop()
	st, err := store.Open(context.Background(), filepath.Join(g.dir, "data", "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mb store.ModemBalance
	if err := st.View(context.Background(), func(tx *store.Tx) (err error) { mb, err = tx.ModemBalance("m1"); return err }); err != nil {
		t.Fatal(err)
	}
	if mb.Amount == nil || *mb.Amount != 10 || mb.Currency != "KES" || !mb.Low || mb.Text != sim.BalanceText(10) {
		t.Fatalf("stored balance %+v", mb)
	}
}

// TestUSSDAdminMQTT runs a USSD menu through MQTT's admin/ussd on the
// daemon's in-process simulated modem.
func TestUSSDAdminMQTT(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	c, got := g.subscribe("admin")
	waitFor(t, "the modem", 20*time.Second, func() bool {
		out, _, _ := g.cli("status", "--json")
		return strings.Contains(out, `"state": "ready"`)
	})
	publishJSON(t, c, "outpost/gw1/admin/ussd", `{"modem": "sim0", "code": "*123#", "answers": ["2", "2"]}`)
	b := &topics{t: t, got: got}
	r := b.next("admin/ussd/reply", func(tp string) bool { return tp == "outpost/gw1/admin/ussd/reply" })
	res, _ := r["result"].(map[string]any)
	screens, _ := res["screens"].([]any)
	if r["ok"] != true || len(screens) != 3 || screens[2].(map[string]any)["text"] != "Weekly bundle activated" {
		t.Fatalf("admin/ussd: %v", r)
	}
	publishJSON(t, c, "outpost/gw1/admin/ussd", `{"modem": "sim0"}`)
	r = b.next("admin/ussd/reply", func(tp string) bool { return tp == "outpost/gw1/admin/ussd/reply" })
	if r["ok"] == true || !strings.Contains(fmt.Sprint(r["error"]), "code: empty") {
		t.Fatalf("admin/ussd without a code: %v", r)
	}
	if out, _, _ := g.cli("audit"); !strings.Contains(out, "mqtt:admin") || !strings.Contains(out, "code *123#, 2 answer(s)") {
		t.Errorf("admin/ussd not audited with the client:\n%s", out)
	}
}

// TestGammuGetUSSD points Gammu's getussd at "outpost sim": it sets
// AT+CSCS="UCS2", dials the code in UCS-2 hex and decodes the UCS-2
// answer.
func TestGammuGetUSSD(t *testing.T) {
	gammu := needTool(t, "gammu")
	dir := t.TempDir()
	dev, _ := simModem(t, dir)
	rc := gammuConfig(t, dir, dev)
	out, err := exec.Command(gammu, "-c", rc, "getussd", sim.BalanceCode).CombinedOutput()
	if err != nil {
		t.Fatalf("gammu getussd: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"`+sim.BalanceText(100)+`"`) || !strings.Contains(string(out), "No action needed") {
		t.Fatalf("gammu getussd:\n%s", out)
	}
}

// TestUSSDAdminXMPP runs a USSD menu by chat: an admin may, a user may
// not; the session is audited with the admin's JID.
func TestUSSDAdminXMPP(t *testing.T) {
	p := xmpptest.StartProsody(t, "outpost.test", xmppAccounts)
	g := xmppGateway(t, p, "")
	g.start()
	out := "outpost@outpost.test"
	bob := xmpptest.Connect(t, p, "bob", "bob-pw")
	g.waitDelivered(g.send("warm up"))
	bob.Send(out, "ussd sim0 *123# 2 1")
	got := bob.Expect(xmppWait, chatFrom(out, "")).Body
	want := "1. Balance\n2. Bundles\n(waiting for an answer)\n---\n1. Daily\n2. Weekly\n(waiting for an answer)\n---\nDaily bundle activated\n(done)"
	if got != want {
		t.Fatalf("ussd by chat:\n%s\nwant\n%s", got, want)
	}
	bob.Send(out, "ussd sim0 *999#")
	if got := bob.Expect(xmppWait, chatFrom(out, "")).Body; !strings.Contains(got, "ussd failed") || !strings.Contains(got, "not supported") {
		t.Errorf("unknown code by chat: %q", got)
	}
	bob.Send(out, "ussd nosuch *100#")
	if got := bob.Expect(xmppWait, chatFrom(out, "")).Body; !strings.Contains(got, `no modem "nosuch"`) {
		t.Errorf("unknown modem by chat: %q", got)
	}
	alice := xmpptest.Connect(t, p, "alice", "alice-pw")
	alice.Send(out, "ussd sim0 *100#")
	if got := alice.Expect(xmppWait, chatFrom(out, "")).Body; !strings.Contains(got, "is for admins") {
		t.Errorf("a user ran ussd: %q", got)
	}
	if o, _, _ := g.cli("audit"); !strings.Contains(o, "xmpp:bob@outpost.test") || !strings.Contains(o, "code *123#, 2 answer(s)") {
		t.Errorf("the chat's session is not audited with the admin:\n%s", o)
	}
}

// A USSD session that outlasts --timeout says the daemon did not answer
// in time, not that no daemon runs; and no daemon is told as such.
func TestUSSDTimeoutIsNotNoDaemon(t *testing.T) {
	dir := t.TempDir()
	dev, simProc := controlledSim(t, dir)
	g := newGatewayWith(t, dev, "")
	g.start()
	waitFor(t, "the modem ready", 20*time.Second, func() bool { out, _, _ := g.cli("status"); return strings.Contains(out, "ready") })
	if _, err := fmt.Fprintln(simProc.stdin, "ussd-delay 5s"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	_, errs, code := g.cli("ussd", "--timeout", "1s", "m1", "*100#")
	if code != 1 || strings.Contains(errs, "no daemon is running") || !strings.Contains(errs, "the daemon does not answer") {
		t.Errorf("a session longer than --timeout: exit %d, %q", code, errs)
	}
	g.d.stop()
	if _, errs, code := g.cli("ussd", "m1", "*100#"); code != 1 || !strings.Contains(errs, "no daemon is running") {
		t.Errorf("no daemon: exit %d, %q", code, errs)
	}
}
