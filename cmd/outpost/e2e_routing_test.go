package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// The rack: four simulated modems in the daemon, on one simulated network
// where they text each other. m4 is receive-only: what the others send it
// arrives as inbound SMS from their numbers, stamped by the network's
// clock, so the tests count what the network delivered, per sender.
var rackNumbers = map[string]string{"m1": "+254700000001", "m2": "+254710000002", "m3": "+254720000003", "m4": "+254730000004"}

// newRack writes a config with the four modems; extra[id] is more TOML
// for that modem.
func newRack(t *testing.T, extra map[string]string) *gateway {
	dir := t.TempDir()
	g := &gateway{t: t, dir: dir, config: filepath.Join(dir, "outpost.toml"), mqtt: freePort(t)}
	var b strings.Builder
	fmt.Fprintf(&b, "gateway_id = \"gw1\"\ndata_dir = %q\nlog_level = \"debug\"\n[mqtt]\nlisten = %q\nallow_anonymous = true\n", filepath.Join(dir, "data"), g.mqtt)
	for _, id := range []string{"m1", "m2", "m3", "m4"} {
		fmt.Fprintf(&b, "[[modem]]\nid = %q\ntype = \"sim\"\nnumber = %q\ncommand_timeout = \"2s\"\nsend_timeout = \"3s\"\nsweep_interval = \"2s\"\n%s\n", id, rackNumbers[id], extra[id])
	}
	if err := os.WriteFile(g.config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return g
}

type rackStatus struct {
	Modems map[string]struct {
		State, Registration string
		Resets              int `json:"resets"`
	} `json:"modems"`
	Routing map[string]struct {
		Send       bool   `json:"send"`
		Today      int    `json:"sent_today"`
		Failures   int    `json:"failures_in_a_row"`
		Rests      int    `json:"rests"`
		RestedFor  string `json:"rested_for"`
		LastError  string `json:"last_error"`
		Waiting    string `json:"waiting"`
		LastMinute int    `json:"sent_last_minute"`
	} `json:"routing"`
}

func (g *gateway) rackStatus() rackStatus {
	g.t.Helper()
	out, errs, code := g.cli("status", "--json")
	if code != 0 {
		g.t.Fatalf("status: exit %d: %s", code, errs)
	}
	var st rackStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		g.t.Fatalf("status: %v\n%s", err, out)
	}
	return st
}

func (g *gateway) waitRackReady() {
	g.t.Helper()
	waitFor(g.t, "the four modems to be ready", 30*time.Second, func() bool {
		st := g.rackStatus()
		for _, id := range []string{"m1", "m2", "m3", "m4"} {
			if st.Modems[id].State != "ready" {
				return false
			}
		}
		return true
	})
}

// sendTo sends one SMS through the CLI and returns its id.
func (g *gateway) sendTo(to, text string, flags ...string) string {
	g.t.Helper()
	out, errs, code := g.cli(append([]string{"send", "--to", to, "--text", text}, flags...)...)
	if code != 0 {
		g.t.Fatalf("send %q: exit %d: %s", text, code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

// queue sends a request to the daemon's HTTP API and returns its id: a
// burst without a process per message.
func (g *gateway) queue(body string) string {
	g.t.Helper()
	code, v := g.post(body)
	id, _ := v["id"].(string)
	if code/100 != 2 || id == "" {
		g.t.Fatalf("POST %s: %d %v", body, code, v)
	}
	return id
}

type rackInbound struct {
	ID    string  `json:"id"`
	Peer  string  `json:"peer"`
	Modem string  `json:"modem"`
	Text  *string `json:"text"`
	SCTS  string  `json:"scts"`
}

func (g *gateway) rackInbox() []rackInbound {
	g.t.Helper()
	out, errs, code := g.cli("inbox", "--json", "--limit", "1000")
	if code != 0 {
		g.t.Fatalf("inbox: exit %d: %s", code, errs)
	}
	var es []rackInbound
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		g.t.Fatalf("inbox output: %v\n%s", err, out)
	}
	return es
}

// received is what a modem received with a text starting with prefix, by
// text.
func (g *gateway) received(modem, prefix string) map[string][]rackInbound {
	got := map[string][]rackInbound{}
	for _, m := range g.rackInbox() {
		if m.Modem == modem && m.Text != nil && strings.HasPrefix(*m.Text, prefix) {
			got[*m.Text] = append(got[*m.Text], m)
		}
	}
	return got
}

var acceptedRe = regexp.MustCompile(`accepted by (m[0-9])`)

// via is the modem that accepted the message's (one-part) SMS.
func via(s shown) string {
	for _, e := range s.Events {
		if m := acceptedRe.FindStringSubmatch(e.Detail); m != nil {
			return m[1]
		}
	}
	return ""
}

func byNumber(number string) string {
	for id, n := range rackNumbers {
		if n == number {
			return id
		}
	}
	return "?" + number
}

// TestModemRouting: prefix routing, a forced modem (also refused when it
// is not one), the answer to an inbound SMS through the modem it came in
// on, and a burst spread over the modems that may send by their load.
func TestModemRouting(t *testing.T) {
	g := newRack(t, map[string]string{
		"m1": `prefixes = ["+25473", "+2547300"]`,
		"m2": `prefixes = ["+254730000"]`,
		"m4": "send = false",
	})
	g.start()
	g.waitRackReady()

	// Status lists the modems in order, in one aligned table.
	out, _, _ := g.cli("status")
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[0], "m") && f[1] == "ready" {
			rows = append(rows, f[0])
			if strings.Index(l, "ready") != strings.Index(out[strings.Index(out, "MODEM"):], "STATE") {
				t.Errorf("status: the row of %s is not aligned with its header:\n%s", f[0], out)
			}
		}
	}
	if fmt.Sprint(rows) != "[m1 m2 m3 m4]" {
		t.Errorf("status lists the modems %v, want in order:\n%s", rows, out)
	}

	// The longest prefix wins: m2's +254730000 over m1's +2547300.
	id := g.sendTo(rackNumbers["m4"], "route by prefix")
	if s := g.waitState(id, "delivered"); via(s) != "m2" {
		t.Errorf("to %s: via %q, want m2 (longest prefix); history %+v", rackNumbers["m4"], via(s), s.Events)
	}
	// Forced: m3, whatever the prefixes; the network says who sent it.
	id = g.sendTo(rackNumbers["m4"], "forced through m3", "--modem", "m3")
	if s := g.waitState(id, "delivered"); via(s) != "m3" {
		t.Errorf("--modem m3: via %q; history %+v", via(s), s.Events)
	}
	waitFor(t, "m4 to receive both", 20*time.Second, func() bool { return len(g.received("m4", "")) == 2 })
	for text, ms := range g.received("m4", "") {
		want := map[string]string{"route by prefix": "m2", "forced through m3": "m3"}[text]
		if len(ms) != 1 || byNumber(ms[0].Peer) != want {
			t.Errorf("m4 received %q %d times from %s, want once from %s", text, len(ms), ms[0].Peer, want)
		}
	}
	// A modem that is not one, or that may not send, is refused at once.
	if _, errs, code := g.cli("send", "--to", rackNumbers["m4"], "--text", "x", "--modem", "m9"); code == 0 || !strings.Contains(errs, `"modem" "m9" is not a configured modem (m1, m2, m3, m4)`) {
		t.Errorf("--modem m9: exit %d, %q", code, errs)
	}
	if _, errs, code := g.cli("send", "--to", rackNumbers["m1"], "--text", "x", "--modem", "m4"); code == 0 || !strings.Contains(errs, `"modem" "m4" is receive-only (send = false)`) {
		t.Errorf("--modem m4 (receive-only): exit %d, %q", code, errs)
	}

	// An answer goes out through the modem the SMS came in on: m1 texts
	// m3 (forced), the gateway answers m3's inbound message; m1's number
	// has no prefix, and m3 is not the least loaded.
	g.sendTo(rackNumbers["m3"], "question for m3", "--modem", "m1")
	var in rackInbound
	waitFor(t, "m3 to receive the question", 20*time.Second, func() bool {
		got := g.received("m3", "question for m3")["question for m3"]
		if len(got) > 0 {
			in = got[0]
		}
		return len(got) > 0
	})
	id = g.sendTo(in.Peer, "answer from m3", "--in-reply-to", in.ID)
	if s := g.waitState(id, "delivered"); via(s) != "m3" {
		t.Errorf("the answer went via %q, want m3 (where the question came in); history %+v", via(s), s.Events)
	}
	waitFor(t, "m1 to receive the answer from m3's number", 20*time.Second, func() bool {
		got := g.received("m1", "answer from m3")["answer from m3"]
		return len(got) == 1 && got[0].Peer == rackNumbers["m3"]
	})

	// A burst to a number no prefix matches (the echo) spreads over
	// m1–m3 by load; each echo comes back to the modem that sent it.
	const n = 18
	ids := make([]string, n)
	for i := range ids {
		ids[i] = g.queue(fmt.Sprintf(`{"to": "+15555550100", "text": "spread %02d"}`, i))
	}
	count := map[string]int{}
	sender := map[string]string{}
	for i, id := range ids {
		m := via(g.waitState(id, "delivered"))
		count[m]++
		sender[fmt.Sprintf("echo: spread %02d", i)] = m
	}
	t.Logf("a burst of %d spread as %v", n, count)
	for _, id := range []string{"m1", "m2", "m3"} {
		if count[id] < n/3-2 || count[id] > n/3+2 {
			t.Errorf("%s took %d of the burst (%v): want the load spread over m1–m3", id, count[id], count)
		}
	}
	waitFor(t, "the echoes", 20*time.Second, func() bool {
		k := 0
		for _, id := range []string{"m1", "m2", "m3"} {
			k += len(g.received(id, "echo: spread "))
		}
		return k == n
	})
	for _, id := range []string{"m1", "m2", "m3", "m4"} {
		for text, ms := range g.received(id, "echo: spread ") {
			if len(ms) != 1 || sender[text] != id {
				t.Errorf("%s received %q %d times; it was sent through %s", id, text, len(ms), sender[text])
			}
		}
	}
}

// simCtl sends "MODEM VERB ARG" lines to the daemon's simulated modems,
// each on its control socket (DATA_DIR/sim-MODEM.control).
type simCtl struct {
	t       *testing.T
	dataDir string
}

func (c simCtl) do(line string) {
	c.t.Helper()
	modem, rest, _ := strings.Cut(line, " ")
	line = rest
	conn, err := net.Dial("unix", filepath.Join(c.dataDir, "sim-"+modem+".control"))
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintln(conn, line)
	ans, _ := bufio.NewReader(conn).ReadString('\n')
	if strings.TrimSpace(ans) != "ok" {
		c.t.Fatalf("sim control %q: %q", line, ans)
	}
}

// TestModemFailover: m2 hangs in the middle of a burst (no answer to
// anything, AT+CMGS included): its parts go out through m1 and m3, the
// history says which modem failed and why, and the network delivers
// every message once; m2 is reset and comes back by itself. Then m2 fails every send with +CMS ERROR: 512
// (MM establishment failure): after three in a row it is rested, shown
// so in status, and the burst goes through the others.
func TestModemFailover(t *testing.T) {
	g := newRack(t, map[string]string{"m4": "send = false"})
	ctl := simCtl{t, filepath.Join(g.dir, "data")}
	g.start()
	g.waitRackReady()

	burst := func(prefix string, n int, mid func()) []string {
		ids := make([]string, n)
		for i := range ids {
			if i == n/4 {
				mid()
			}
			ids[i] = g.queue(fmt.Sprintf(`{"to": %q, "text": "%s %02d", "report": false}`, rackNumbers["m4"], prefix, i))
		}
		return ids
	}
	check := func(prefix string, ids []string) (moved int) {
		t.Helper()
		count := map[string]int{}
		for _, id := range ids {
			var s shown
			waitFor(t, "message "+id+" sent", 60*time.Second, func() bool {
				s = g.show(id)
				return s.State == "sent" || s.State == "failed"
			})
			if s.State != "sent" || s.Deliveries[0].Attempts != 1 {
				t.Errorf("%s: %s after %d attempts; history %+v", id, s.State, s.Deliveries[0].Attempts, s.Events)
			}
			count[via(s)]++
			if hasEvent(s, "not sent through m2") {
				moved++
			}
		}
		t.Logf("%s: sent via %v; %d moved off m2", prefix, count, moved)
		var got map[string][]rackInbound
		waitFor(t, "m4 to receive the burst", 30*time.Second, func() bool {
			got = g.received("m4", prefix+" ")
			return len(got) == len(ids)
		})
		time.Sleep(time.Second) // a copy sent twice would arrive by now
		got = g.received("m4", prefix+" ")
		for i := range ids {
			text := fmt.Sprintf("%s %02d", prefix, i)
			if len(got[text]) != 1 {
				t.Errorf("m4 received %q %d times, want once", text, len(got[text]))
			}
		}
		return moved
	}

	ids := burst("hang", 24, func() { ctl.do("m2 hang on") })
	if moved := check("hang", ids); moved == 0 {
		t.Errorf("no part moved off the hung m2")
	}
	// Nobody clears the fault: Outpost resets the hung m2 (AT+CFUN=1,1,
	// which the simulator obeys even while hung) and it comes back.
	// Its rest after the hang must be over too, or the next burst
	// never tries it (a reset quicker than the rest did that once).
	waitFor(t, "m2 reset, ready again and no longer rested", 90*time.Second, func() bool {
		st := g.rackStatus()
		m := st.Modems["m2"]
		return m.State == "ready" && m.Registration == "home" && m.Resets > 0 && st.Routing["m2"].RestedFor == "" // a reset modem searches for the network a while
	})
	// Now it refuses every send.
	ids = burst("busy", 24, func() { ctl.do("m2 send-error 512") })
	moved := check("busy", ids)
	st := g.rackStatus().Routing["m2"]
	if moved == 0 || st.Rests == 0 || st.RestedFor == "" || !strings.Contains(st.LastError, "512") {
		t.Errorf("m2 refusing every send: %d parts moved, status %+v: want it rested, with its error", moved, st)
	}
	if out, _, _ := g.cli("status"); !regexp.MustCompile(`m2 +rested for .*after failing in a row: .*512`).MatchString(out) {
		t.Errorf("outpost status does not say m2 is rested:\n%s", out)
	}
}

// TestModemRateLimit: a burst of 100 with rate = "6/min" on the three
// modems that send. The simulated network's clock runs 30 times faster
// than real time, and the limits count in it: the burst takes more than
// five of its minutes. No window of a minute holds more than six of one
// modem's parts, by the network's own time stamps; nothing fails and no
// attempt is used by waiting.
func TestModemRateLimit(t *testing.T) {
	g := newRack(t, map[string]string{"m1": `rate = "6/min"`, "m2": `rate = "6/min"`, "m3": `rate = "6/min"`, "m4": "send = false"})
	g.start("OUTPOST_SIM_SPEED=30")
	g.waitRackReady()

	const n = 100
	ids := make([]string, n)
	post := func(from, to int) {
		for i := from; i < to; i++ {
			ids[i] = g.queue(fmt.Sprintf(`{"to": %q, "text": "rate %03d", "report": false}`, rackNumbers["m4"], i))
		}
	}
	// 30 fill the three modems' minute (18) and wait: status says why.
	post(0, 30)
	waitFor(t, "the modems to say they wait for their rate", 20*time.Second, func() bool {
		for _, r := range g.rackStatus().Routing {
			if strings.Contains(r.Waiting, "rate 6/min reached") {
				return true
			}
		}
		return false
	})
	post(30, n)
	var got map[string][]rackInbound
	waitFor(t, "m4 to receive the 100", 50*time.Second, func() bool {
		got = g.received("m4", "rate ")
		return len(got) == n
	})
	waited := 0
	for _, id := range ids {
		s := g.show(id)
		if s.State != "sent" || s.Deliveries[0].Attempts != 1 {
			t.Errorf("%s: %s after %d attempts (want sent after 1); history %+v", id, s.State, s.Deliveries[0].Attempts, s.Events)
		}
		if hasEvent(s, "queued: not counted: waiting for a modem's limit: no modem can take it now: m1: rate 6/min reached, next in") {
			waited++
		}
	}
	// Claimed with more than the free places, the others said why they
	// waited in their history.
	if waited == 0 {
		t.Errorf("no message's history says it waited for the rate")
	}
	t.Logf("%d messages waited in the queue for the rate", waited)
	// The network's time stamps, per sending modem.
	stamps := map[string][]time.Time{}
	for text, ms := range got {
		if len(ms) != 1 {
			t.Errorf("%q received %d times", text, len(ms))
		}
		at, err := time.Parse(time.RFC3339, ms[0].SCTS)
		if err != nil {
			t.Fatalf("scts %q: %v", ms[0].SCTS, err)
		}
		stamps[byNumber(ms[0].Peer)] = append(stamps[byNumber(ms[0].Peer)], at)
	}
	var first, last time.Time
	for id, ts := range stamps {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		for i := 0; i+6 < len(ts); i++ {
			if d := ts[i+6].Sub(ts[i]); d < time.Minute {
				t.Errorf("%s sent 7 parts within %s of the network's time (%s to %s)", id, d, ts[i].Format(time.TimeOnly), ts[i+6].Format(time.TimeOnly))
			}
		}
		if first.IsZero() || ts[0].Before(first) {
			first = ts[0]
		}
		if ts[len(ts)-1].After(last) {
			last = ts[len(ts)-1]
		}
		t.Logf("%s sent %d", id, len(ts))
	}
	// 100 at 18 a minute: the 19th minute's worth starts after 5 minutes.
	if span := last.Sub(first); span < 5*time.Minute {
		t.Errorf("the burst took %s of the network's time; at 3 × 6/min it cannot take under 5m", span)
	}
	t.Logf("the burst took %s of the network's time", last.Sub(first))
}
