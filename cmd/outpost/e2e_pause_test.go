package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPauseModemEndToEnd, through the real binary with two simulated
// modems on one network: outpost pause m1; an SMS that must go out
// through m1 stays queued (no attempt used) while m2 sends; m1 still
// receives; status and /readyz say m1 is paused; the pause outlives a
// restart; outpost resume m1 and the SMS is delivered through m1. The
// HTTP API's routes: admin only, 404 for an unknown name; the audit log
// says who paused and resumed.
func TestPauseModemEndToEnd(t *testing.T) {
	numbers := map[string]string{"m1": "+254700000001", "m2": "+254710000002"}
	addr := freePort(t)
	dir := t.TempDir()
	g := &gateway{t: t, dir: dir, config: filepath.Join(dir, "outpost.toml"), mqtt: freePort(t)}
	cfg := fmt.Sprintf("gateway_id = \"gw1\"\ndata_dir = %q\nlog_level = \"debug\"\n[mqtt]\nlisten = %q\nallow_anonymous = true\n[http]\nlisten = %q\n",
		filepath.Join(dir, "data"), g.mqtt, addr)
	for _, id := range []string{"m1", "m2"} {
		cfg += fmt.Sprintf("[[modem]]\nid = %q\ntype = \"sim\"\nnumber = %q\n", id, numbers[id])
	}
	if err := os.WriteFile(g.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g.start()
	base := "http://" + addr
	waitFor(t, "both modems ready", 30*time.Second, func() bool {
		_, v := httpJSON(t, base, "", "GET", "/readyz", "")
		return fmt.Sprint(v["modems_ready"]) == "[m1 m2]"
	})

	out, errs, code := g.cli("pause", "m1")
	if code != 0 || !strings.Contains(out, "modem m1 paused") {
		t.Fatalf("outpost pause m1: exit %d: %s%s", code, out, errs)
	}
	if _, errs, code := g.cli("pause", "m9"); code != 1 || !strings.Contains(errs, `no such modem or connector "m9"`) || !strings.Contains(errs, "m1, m2") {
		t.Errorf("outpost pause m9: exit %d: %s", code, errs)
	}
	held := g.send("held for m1", "--modem", "m1")
	other := g.send("through m2")
	g.waitDelivered(other)

	// m1 receives while paused: m2 texts it.
	g.sendTo(numbers["m1"], "to the paused one", "--modem", "m2")
	waitFor(t, "m1 receives", 30*time.Second, func() bool {
		for _, m := range g.rackInbox() {
			if m.Modem == "m1" && m.Text != nil && *m.Text == "to the paused one" {
				return true
			}
		}
		return false
	})
	if s := g.show(held); s.State != "queued" || s.Deliveries[0].Attempts != 0 {
		t.Errorf("the SMS for paused m1: %s, %d attempts; want queued, none used", s.State, s.Deliveries[0].Attempts)
	}

	checkPaused := func(when string) {
		t.Helper()
		out, _, _ := g.cli("status", "--json")
		var st struct {
			Paused []string
			Modems map[string]struct {
				State  string
				Paused bool
			}
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil || fmt.Sprint(st.Paused) != "[m1]" || !st.Modems["m1"].Paused || st.Modems["m2"].Paused {
			t.Errorf("%s: status: %v %+v", when, err, st)
		}
		if out, _, _ := g.cli("status"); !strings.Contains(out, "paused: m1") || !strings.Contains(out, "ready (paused)") {
			t.Errorf("%s: outpost status does not say m1 is paused:\n%s", when, out)
		}
		waitFor(t, "m2 ready", 30*time.Second, func() bool {
			_, v := httpJSON(t, base, "", "GET", "/readyz", "")
			return fmt.Sprint(v["modems_ready"]) == "[m2]"
		})
	}
	checkPaused("paused")

	g.d.stop()
	g.start()
	checkPaused("after a restart")
	time.Sleep(3 * time.Second) // the dispatcher's first rounds after the start
	if s := g.show(held); s.State != "queued" || s.Deliveries[0].Attempts != 0 {
		t.Errorf("after a restart, m1 still paused: %s, %d attempts", s.State, s.Deliveries[0].Attempts)
	}

	// The API on TCP: a user token may not; an admin's may.
	user, admin := g.tokenAdd("desk", "--role", "user"), g.tokenAdd("ops", "--role", "admin")
	if code, v := httpJSON(t, base, user, "POST", "/v1/resume/m1", ""); code != 403 || v["error"] == nil {
		t.Errorf("user token resumes: %d %v", code, v)
	}
	if code, v := httpJSON(t, base, admin, "POST", "/v1/resume/nothing", ""); code != 404 || v["error"] == nil {
		t.Errorf("resume of an unknown name: %d %v", code, v)
	}
	if code, v := httpJSON(t, base, admin, "POST", "/v1/pause/m1", ""); code != 200 || v["paused"] != true || v["kind"] != "modem" {
		t.Errorf("pause m1 again on TCP: %d %v", code, v)
	}

	out, errs, code = g.cli("resume", "m1")
	if code != 0 || !strings.Contains(out, "modem m1 resumed") {
		t.Fatalf("outpost resume m1: exit %d: %s%s", code, out, errs)
	}
	s := g.waitDelivered(held)
	if s.Deliveries[0].Attempts != 1 || !strings.Contains(fmt.Sprint(s.Events), "via m1") {
		t.Errorf("after resume: %d attempts, history %v: want it sent through m1 on its first attempt", s.Deliveries[0].Attempts, s.Events)
	}
	if out, _, _ := g.cli("status", "--json"); !strings.Contains(out, `"paused": []`) {
		t.Errorf("status after resume: %s", out)
	}
	out, _, _ = g.cli("audit", "--json")
	var log struct {
		Audit []struct{ Who, Channel, Op, Target string }
	}
	json.Unmarshal([]byte(out), &log)
	var ops []string
	for _, e := range log.Audit {
		if e.Op == "pause" || e.Op == "resume" {
			ops = append(ops, e.Op+" "+e.Target+" "+e.Channel+" "+strings.Fields(e.Who)[0])
		}
	}
	// Pausing on TCP what was paused already changes nothing.
	if fmt.Sprint(ops) != "[pause m1 cli user resume m1 cli user]" && fmt.Sprint(ops) != "[resume m1 cli user pause m1 cli user]" {
		t.Errorf("audit of pause and resume: %v\n%s", ops, out)
	}
}

// TestPauseConnectorEndToEnd: outpost pause mqtt holds the local
// broker's deliveries: the echo still comes in (the modem is not
// paused) and is stored, its delivery to MQTT waits queued, no attempt
// used, and nothing is published on sms/in; outpost resume mqtt and a
// subscriber gets it.
func TestPauseConnectorEndToEnd(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	_, got := g.subscribe("watcher")
	if out, errs, code := g.cli("pause", "mqtt"); code != 0 || !strings.Contains(out, "connector mqtt paused") {
		t.Fatalf("outpost pause mqtt: exit %d: %s%s", code, out, errs)
	}
	g.waitDelivered(g.send("while mqtt is paused"))
	echo := g.waitEcho("while mqtt is paused")
	onSMSIn := func(d time.Duration) bool {
		deadline := time.After(d)
		for {
			select {
			case m := <-got:
				if m.Topic() == "outpost/gw1/sms/in" && strings.Contains(string(m.Payload()), "while mqtt is paused") {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}
	if onSMSIn(3 * time.Second) {
		t.Fatal("the echo was published on sms/in while mqtt was paused")
	}
	s := g.show(echo.ID)
	if len(s.Deliveries) != 1 || s.Deliveries[0].State != "queued" || s.Deliveries[0].Attempts != 0 {
		t.Errorf("the echo's delivery to mqtt while paused: %+v", s.Deliveries)
	}
	if out, errs, code := g.cli("resume", "mqtt"); code != 0 || !strings.Contains(out, "connector mqtt resumed") {
		t.Fatalf("outpost resume mqtt: exit %d: %s%s", code, out, errs)
	}
	if !onSMSIn(20 * time.Second) {
		t.Fatal("the echo did not reach sms/in after resume")
	}
	waitFor(t, "the echo's delivery to mqtt", 20*time.Second, func() bool { return g.show(echo.ID).Deliveries[0].State == "delivered" })
	if s := g.show(echo.ID); s.Deliveries[0].Attempts != 1 {
		t.Errorf("the echo's delivery after resume: %+v", s.Deliveries)
	}
}
