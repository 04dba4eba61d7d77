package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// hubBenchResult is one side of the store-and-forward comparison.
type hubBenchResult struct {
	publish time.Duration // n QoS 1 publishes acknowledged by the edge
	drain   time.Duration // hub up → every kept message at the hub
	first   time.Duration // hub up → the first message at the hub
	kept    int           // distinct messages the hub got after kill -9
}

// publishAll publishes n QoS 1 messages to addr from pubs clients at once
// (field/p<k>, payloads 1…), each with up to 64 publishes in flight.
func publishAll(t *testing.T, addr string, n, pubs int) time.Duration {
	t0 := time.Now()
	var wg sync.WaitGroup
	for k := 0; k < pubs; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := pahomqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("bench-pub-%d", k)).SetCleanSession(true)
			c := pahomqtt.NewClient(opts)
			if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Errorf("connect: %v", tok.Error())
				return
			}
			defer c.Disconnect(0)
			// Up to 64 publishes in flight, as a busy device has.
			var inflight []pahomqtt.Token
			wait := func(toks []pahomqtt.Token) bool {
				for _, tok := range toks {
					if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
						t.Errorf("publish: %v", tok.Error())
						return false
					}
				}
				return true
			}
			for i := 1; i <= n/pubs; i++ {
				inflight = append(inflight, c.Publish(fmt.Sprintf("field/p%d", k), 1, false, strconv.Itoa(i)))
				if len(inflight) == 64 {
					if !wait(inflight) {
						return
					}
					inflight = inflight[:0]
				}
			}
			wait(inflight)
		}()
	}
	wg.Wait()
	return time.Since(t0)
}

// publishLines publishes n QoS 1 messages to addr from one
// "mosquitto_pub -l -q 1" (one message a line on its stdin, its default
// window of in-flight messages): one device publishing at full speed.
// It returns the time until mosquitto_pub exited, every PUBACK received.
func publishLines(t *testing.T, addr, topic string, n int) time.Duration {
	t.Helper()
	bin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Fatal("mosquitto_pub is not installed (scripts/test.sh installs it)")
	}
	host, port, _ := net.SplitHostPort(addr)
	var lines strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&lines, "%d\n", i)
	}
	cmd := exec.Command(bin, "-h", host, "-p", port, "-q", "1", "-t", topic, "-i", "bench-single", "-l")
	cmd.Stdin = strings.NewReader(lines.String())
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub -l: %v\n%s", err, out)
	}
	return time.Since(t0)
}

// drainHub connects the hub's persistent subscriber and counts distinct
// messages until n arrived or none came for idle.
func drainHub(h *mosquittoHub, n int, idle time.Duration) (kept int, drain, first time.Duration) {
	got := make(chan pahomqtt.Message, n+1000)
	t0 := time.Now()
	c := h.client("hq-subscriber", false, got)
	defer c.Disconnect(0)
	seen := map[string]bool{}
	last := time.Now()
	for len(seen) < n {
		select {
		case m := <-got:
			if len(seen) == 0 {
				first = time.Since(t0)
			}
			seen[m.Topic()+"|"+string(m.Payload())] = true
			last = time.Now()
		case <-time.After(idle):
			return len(seen), last.Sub(t0), first
		}
	}
	return len(seen), time.Since(t0), first
}

// prepareHub makes the hub's persistent subscriber session
// ("hq-subscriber" on filter, QoS 1) and stops the hub: what arrives
// while the subscriber is away is kept for it.
func prepareHub(t *testing.T, filter string) *mosquittoHub {
	h := newMosquittoHub(t)
	h.start()
	sub := h.client("hq-subscriber", false, nil)
	if tok := sub.Subscribe(filter, 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	sub.Disconnect(100)
	h.p.stop()
	return h
}

// TestHubBench is what scripts/bench.sh runs for the sync targets: the
// same scenario (hub down, n QoS 1 publishes, kill -9 of the edge, start
// it, hub up) against Outpost and against a Mosquitto edge bridged to the
// hub, side by side.
func TestHubBench(t *testing.T) {
	if os.Getenv("OUTPOST_HUB_BENCH") == "" {
		t.Skip("scripts/bench.sh runs this (OUTPOST_HUB_BENCH=1)")
	}
	const n, pubs = 20000, 8
	// How long the hub stays away after the edge restarted.
	const away = 3 * time.Second
	// The figures are for the binary users run, not the race-enabled one.
	bin := filepath.Join(t.TempDir(), "outpost")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	saved := binary
	binary = bin
	defer func() { binary = saved }()

	// One device at full speed: one mosquitto_pub -l -q 1, the hub away
	// (Outpost commits each message before its PUBACK; Mosquitto, with
	// persistence on, only saves now and then). Each is started afresh
	// for each of singleRounds rounds, in turn, and the medians compared:
	// one run of either moves by a quarter from one to the next on a
	// shared machine.
	const singleRounds = 5
	var singles, singlesMosq []time.Duration
	for range singleRounds {
		g := newGateway(t, "")
		writeConfig(t, g.config, fmt.Sprintf("gateway_id = \"gw1\"\ndata_dir = %q\nlog_level = \"info\"\n[mqtt]\nlisten = %q\n"+
			"[hub]\nurl = \"tcp://%s\"\n[[hub.forward]]\ntopic = \"field/#\"\n", filepath.Join(g.dir, "data"), g.mqtt, freePort(t)))
		g.start()
		singles = append(singles, publishLines(t, g.mqtt, "field/single", n))
		g.d.stop()
		h := newMosquittoHub(t)
		dir := t.TempDir()
		edge := &mosquittoHub{t: t, bin: h.bin, addr: freePort(t), conf: filepath.Join(dir, "edge.conf")}
		_, port, _ := net.SplitHostPort(edge.addr)
		conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nmax_queued_messages 0\nuser root\n"+
			"connection hub\naddress %s\ntopic field/# out 1\ncleansession false\nrestart_timeout 1\n", port, dir, h.addr)
		os.WriteFile(edge.conf, []byte(conf), 0o600)
		edge.start()
		singlesMosq = append(singlesMosq, publishLines(t, edge.addr, "field/single", n))
		edge.p.stop()
	}
	single, singleMosq := median(singles), median(singlesMosq)

	var ours, theirs hubBenchResult
	{
		h := prepareHub(t, "field/#")
		g := newGateway(t, "")
		// As a box runs: log level info, not the tests' debug.
		writeConfig(t, g.config, fmt.Sprintf("gateway_id = \"gw1\"\ndata_dir = %q\nlog_level = \"info\"\n[mqtt]\nlisten = %q\n"+
			"[hub]\nurl = \"tcp://%s\"\n[[hub.forward]]\ntopic = \"field/#\"\nqos = 1\n", filepath.Join(g.dir, "data"), g.mqtt, h.addr))
		g.start()
		ours.publish = publishAll(t, g.mqtt, n, pubs)
		g.d.kill()
		g.start()
		time.Sleep(away) // long enough for the reconnect backoff to reach its cap
		h.start()
		ours.kept, ours.drain, ours.first = drainHub(h, n, 10*time.Second)
		g.d.stop()
		h.p.stop()
	}
	var theirsClean hubBenchResult
	for _, kill := range []bool{true, false} {
		h := prepareHub(t, "field/#")
		dir := t.TempDir()
		edge := &mosquittoHub{t: t, bin: h.bin, addr: freePort(t), conf: filepath.Join(dir, "edge.conf")}
		_, port, _ := net.SplitHostPort(edge.addr)
		conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nmax_queued_messages 0\nuser root\n"+
			"connection hub\naddress %s\ntopic field/# out 1\ncleansession false\nrestart_timeout 1\n", port, dir, h.addr)
		os.WriteFile(edge.conf, []byte(conf), 0o600)
		edge.start()
		var r hubBenchResult
		r.publish = publishAll(t, edge.addr, n, pubs)
		if kill {
			edge.p.kill()
			edge.start()
		}
		time.Sleep(away)
		h.start()
		r.kept, r.drain, r.first = drainHub(h, n, 10*time.Second)
		edge.p.stop()
		h.p.stop()
		if kill {
			theirs = r
		} else {
			theirsClean = r // its drain rate, which the kill leaves nothing to measure
		}
	}
	rate := func(d time.Duration, k int) float64 {
		if k == 0 || d <= 0 {
			return 0
		}
		return float64(k) / d.Seconds()
	}
	fmt.Printf("\n%d QoS 1 messages from %d publishers, hub down; kill -9 of the edge; edge restarted; hub up\n", n, pubs)
	fmt.Printf("%-26s %14s %12s %14s %12s %16s %12s\n", "edge", "publish", "msgs/s", "drain", "msgs/s", "kept after -9", "first msg")
	row := func(name string, r hubBenchResult, kept string) {
		fmt.Printf("%-26s %14v %12.0f %14v %12.0f %16s %12v\n", name, r.publish.Round(time.Millisecond), rate(r.publish, n),
			r.drain.Round(time.Millisecond), rate(r.drain, r.kept), kept, r.first.Round(time.Millisecond))
	}
	row("outpost (SQLite queue)", ours, strconv.Itoa(ours.kept))
	row("mosquitto bridge", theirs, strconv.Itoa(theirs.kept))
	row("mosquitto bridge, no kill", theirsClean, "—")
	fmt.Printf("targets: publish ≥ 1/2 of mosquitto's: %.2f; drain ≥ mosquitto bridge's: %.2f; first message ≤ 1s after the hub is back: %v\n",
		rate(ours.publish, n)/rate(theirs.publish, n), rate(ours.drain, ours.kept)/rate(theirsClean.drain, theirsClean.kept), ours.first.Round(time.Millisecond))
	fmt.Printf("\n%d QoS 1 messages from one mosquitto_pub -l -q 1, hub away; median of %d runs each, in turn\n", n, singleRounds)
	fmt.Printf("%-26s %14s %12s\n", "edge", "publish", "msgs/s")
	fmt.Printf("%-26s %14v %12.0f   runs %v\n", "outpost (durable)", single.Round(time.Millisecond), rate(single, n), rounded(singles))
	fmt.Printf("%-26s %14v %12.0f   runs %v\n", "mosquitto (persistence)", singleMosq.Round(time.Millisecond), rate(singleMosq, n), rounded(singlesMosq))
	fmt.Printf("targets: one client ≥ 1/2 of mosquitto's: %.2f\n", rate(single, n)/rate(singleMosq, n))
	if ours.kept != n {
		t.Errorf("outpost kept %d of %d", ours.kept, n)
	}
}

// median is the middle of ds (the upper one of an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// rounded is ds to the millisecond, for printing.
func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
