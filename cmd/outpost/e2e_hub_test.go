package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// mosquittoHub is a real Mosquitto playing the central hub, on a loopback
// port, with persistence in its own folder (so a subscriber's session and
// the messages queued for it survive a restart of the hub).
type mosquittoHub struct {
	t    *testing.T
	bin  string
	addr string
	conf string
	p    *proc
}

func newMosquittoHub(t *testing.T) *mosquittoHub {
	bin, err := exec.LookPath("mosquitto")
	if err != nil { // /usr/sbin is not on every PATH
		bin = "/usr/sbin/mosquitto"
		if _, err = os.Stat(bin); err != nil {
			if os.Getenv("OUTPOST_REQUIRE_TOOLS") != "" {
				t.Fatal("mosquitto is not installed (scripts/test.sh installs it)")
			}
			t.Skip("mosquitto is not installed; scripts/test.sh installs it")
		}
	}
	dir := t.TempDir()
	h := &mosquittoHub{t: t, bin: bin, addr: freePort(t), conf: filepath.Join(dir, "mosquitto.conf")}
	_, port, _ := net.SplitHostPort(h.addr)
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n"+
		"autosave_interval 0\nmax_queued_messages 0\nmax_inflight_messages 0\nuser root\nlog_dest stderr\n", port, dir)
	if err := os.WriteFile(h.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *mosquittoHub) start() {
	h.t.Helper()
	h.p = startCmd(h.t, filepath.Dir(h.conf), nil, h.bin, "-c", h.conf)
	waitFor(h.t, "mosquitto to listen", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", h.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// client connects to the hub; a persistent session when clean is false.
func (h *mosquittoHub) client(id string, clean bool, got chan pahomqtt.Message) pahomqtt.Client {
	h.t.Helper()
	opts := pahomqtt.NewClientOptions().AddBroker("tcp://" + h.addr).SetClientID(id).SetCleanSession(clean).SetAutoReconnect(false)
	if got != nil {
		opts.SetDefaultPublishHandler(func(_ pahomqtt.Client, m pahomqtt.Message) { got <- m })
	}
	c := pahomqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		h.t.Fatalf("connect to the hub: %v", tok.Error())
	}
	return c
}

// TestHubStoreAndForwardSurvivesKill is acceptance 1 of the sync issue:
// with the hub down, 20,000 QoS 1 messages are published to a
// pass-through topic on the local broker; Outpost is killed (-9) and
// started again; the hub comes up; a subscriber on the hub gets all of
// them, in order, with duplicates only within one window.
func TestHubStoreAndForwardSurvivesKill(t *testing.T) {
	const n, window = 20000, 64
	// The hub's subscriber has a persistent session, made while the hub
	// was up before: what arrives while it is away is kept for it.
	hubb := prepareHub(t, "field/#")

	g := newGatewayWith(t, "", fmt.Sprintf("[hub]\nurl = \"tcp://%s\"\nwindow = %d\n[[hub.forward]]\ntopic = \"field/#\"\nqos = 1\n", hubb.addr, window))
	g.start()
	local, _ := g.subscribe("sensor-gateway")
	t0 := time.Now()
	for i := 1; i <= n; i++ {
		tok := local.Publish("field/sensor1", 1, false, strconv.Itoa(i))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	t.Logf("%d QoS 1 publishes committed in %v (%.0f/s)", n, time.Since(t0), n/time.Since(t0).Seconds())
	local.Disconnect(0)
	g.d.kill()
	g.start()
	// What the user sees while the hub is away: the backlog, kept.
	// (n and a few of Outpost's own: the modem's status.)
	out, errs, code := g.cli("status")
	queued := -1
	if _, rest, ok := strings.Cut(out, ": down; "); ok {
		fmt.Sscanf(rest, "%d", &queued)
	}
	if queued < n || !strings.Contains(out, "hub link down since ") {
		t.Errorf("status does not show the hub link down (and since when) with %d queued: exit %d\n%s%s", n, code, out, errs)
	}

	hubb.start()
	got := make(chan pahomqtt.Message, n+1000)
	t1 := time.Now()
	hubb.client("hq-subscriber", false, got)
	next, dups := 1, 0
	deadline := time.After(3 * time.Minute)
	for next <= n {
		select {
		case m := <-got:
			v, err := strconv.Atoi(string(m.Payload()))
			switch {
			case err != nil:
				t.Fatalf("payload %q", m.Payload())
			case v == next:
				next++
			case v < next && next-v <= window:
				dups++
			default:
				t.Fatalf("got %d after %d: out of order or a gap", v, next-1)
			}
		case <-deadline:
			t.Fatalf("the hub got %d of %d", next-1, n)
		}
	}
	t.Logf("drained %d to the hub in %v (%d duplicates)", n, time.Since(t1), dups)
	if dups > window {
		t.Errorf("%d duplicates, more than one window (%d)", dups, window)
	}
}

// TestHubDownlinkWhileOffline is acceptance 6 of the sync issue: a send
// published on the hub while the gateway is offline goes out as an SMS
// once it reconnects; killing it (-9) right after the request arrived
// loses nothing and sends nothing twice.
func TestHubDownlinkWhileOffline(t *testing.T) {
	hubb := newMosquittoHub(t)
	hubb.start()
	got := make(chan pahomqtt.Message, 100)
	hq := hubb.client("hq", true, got)
	if tok := hq.Subscribe("outpost/gw1/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	waitHub := func(topic, contains string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case m := <-got:
				if m.Topic() == topic && strings.Contains(string(m.Payload()), contains) {
					return
				}
			case <-deadline:
				t.Fatalf("nothing with %q on %s at the hub", contains, topic)
			}
		}
	}
	// The modem (and the network behind it) is a process of its own, so
	// that it outlives the kill as a real one does: the status report of
	// a part sent just before the kill still comes.
	device, _ := simModem(t, t.TempDir())
	g := newGatewayWith(t, device, fmt.Sprintf("[hub]\nurl = \"tcp://%s\"\n", hubb.addr))
	g.start()
	waitHub("outpost/gw1/status", "online") // its session on the hub now exists
	g.d.stop()
	waitHub("outpost/gw1/status", "offline")

	send := `{"id":"hq-1","to":"+15555550100","text":"from headquarters"}`
	if tok := hq.Publish("outpost/gw1/sms/send", 1, false, send); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	g.start()
	waitFor(t, "the hub's send to be stored", 20*time.Second, func() bool {
		_, _, code := g.cli("show", "hq-1", "--json")
		return code == 0
	})
	g.d.kill()
	g.start()
	g.waitDelivered("hq-1")
	g.waitEcho("from headquarters")
	waitHub("outpost/gw1/sms/send/reply", `"id":"hq-1","ok":true`)
	if n, _ := g.echoes("echo: from headquarters"); n != 1 {
		t.Errorf("the SMS went out %d times", n)
	}
}

// TestHubQueueFullRefuses is part of acceptance 4 of the sync issue: with
// the hub away and when_full = "refuse", the queue fills to its limit;
// the next publish is not acknowledged (the client keeps it), its
// publisher is told why on hub/refused, and status counts it. An MQTT
// 3.1.1 publisher is disconnected: it sends a publish again only when it
// reconnects (a mosquitto_pub left without its PUBACK waited for good).
func TestHubQueueFullRefuses(t *testing.T) {
	const max = 50
	g := newGatewayWith(t, "", fmt.Sprintf("[hub]\nurl = \"tcp://%s\"\nmax_messages = %d\nwhen_full = \"refuse\"\n[[hub.forward]]\ntopic = \"field/#\"\nqos = 1\n", freePort(t), max))
	g.start()
	_, got := g.subscribe("watcher")
	c, _ := g.subscribe("sensor-gateway")
	refused := 0
	for i := 1; i <= max+10 && refused == 0; i++ {
		tok := c.Publish("field/sensor1", 1, false, strconv.Itoa(i))
		if !tok.WaitTimeout(2*time.Second) || tok.Error() != nil {
			refused = i
		}
	}
	if refused == 0 {
		t.Fatalf("%d publishes all acknowledged past max_messages = %d", max+10, max)
	}
	deadline := time.After(10 * time.Second)
	for reason := ""; reason == ""; {
		select {
		case m := <-got:
			if strings.HasSuffix(m.Topic(), "/hub/refused") && strings.Contains(string(m.Payload()), "full") {
				reason = string(m.Payload())
			}
		case <-deadline:
			t.Fatal("no reason on hub/refused")
		}
	}
	out, _, _ := g.cli("status")
	if !strings.Contains(out, fmt.Sprintf("%d message(s)", max)) || !strings.Contains(out, "refused (full)") {
		t.Errorf("status:\n%s", out)
	}
	// An MQTT 3.1.1 client is disconnected, not left waiting for a PUBACK
	// (mosquitto_pub -m then says so and exits; with -l it reconnects and
	// sends it again).
	host, port, _ := net.SplitHostPort(g.mqtt)
	pub, _ := exec.Command("timeout", "5", "mosquitto_pub", "-V", "mqttv311", "-d", "-q", "1", "-h", host, "-p", port, "-t", "field/sensor1", "-m", "v3").CombinedOutput()
	if !strings.Contains(string(pub), "connection was lost") || strings.Contains(string(pub), "received PUBACK") {
		t.Errorf("mosquitto_pub -V mqttv311 was not disconnected:\n%s", pub)
	}
	// An MQTT 5 client (Mosquitto's own; paho.mqtt.golang speaks 3.1.1)
	// gets its PUBACK with reason code 0x97, quota exceeded.
	pub, err := exec.Command("mosquitto_pub", "-V", "mqttv5", "-d", "-q", "1", "-h", host, "-p", port, "-t", "field/sensor1", "-m", "v5").CombinedOutput()
	if err != nil || !strings.Contains(string(pub), "received PUBACK (Mid: 1, RC:151)") || !strings.Contains(string(pub), "Quota exceeded") {
		t.Errorf("mosquitto_pub -V mqttv5: %v\n%s", err, pub)
	}
}

// cutter is a TCP proxy in front of the hub whose connections the test
// cuts at will: a flaky uplink.
type cutter struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
}

func newCutter(t *testing.T, to string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, to: to}
	t.Cleanup(func() { ln.Close(); c.cut() })
	go func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", to)
			if err != nil {
				a.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, a, b)
			c.mu.Unlock()
			go func() { io.Copy(a, b); a.Close(); b.Close() }()
			go func() { io.Copy(b, a); a.Close(); b.Close() }()
		}
	}()
	return c
}

func (c *cutter) addr() string { return c.ln.Addr().String() }

// cut drops every connection through the proxy.
func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.conns {
		x.Close()
	}
	c.conns = nil
}

// TestHubLinkCutFiftyTimes is acceptance 3 of the sync issue: during a
// steady flow (pass-through publishes, SMS out and their echoes in, state
// changes) the hub link is cut 50 times at random moments; every message
// reaches the hub, pass-through order is kept, duplicates stay within one
// window.
func TestHubLinkCutFiftyTimes(t *testing.T) {
	const window = 16
	hubb := newMosquittoHub(t)
	hubb.start()
	got := make(chan pahomqtt.Message, 100000)
	hq := hubb.client("hq", false, got)
	if tok := hq.Subscribe("#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	proxy := newCutter(t, hubb.addr)
	g := newGatewayWith(t, "", fmt.Sprintf("[hub]\nurl = \"tcp://%s\"\nwindow = %d\n[[hub.forward]]\ntopic = \"field/#\"\nqos = 1\n", proxy.addr(), window))
	g.start()
	local, _ := g.subscribe("sensor-gateway")

	stop := make(chan struct{})
	var published int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // pass-through flow
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if tok := local.Publish("field/flow", 1, false, strconv.Itoa(i)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Errorf("publish %d: %v", i, tok.Error())
				return
			}
			published = i
		}
	}()
	var ids []string
	for cut := 0; cut < 50; cut++ {
		if cut%10 == 0 { // SMS out, echoes in, state changes
			ids = append(ids, g.send(fmt.Sprintf("flow %d", cut)))
		}
		time.Sleep(time.Duration(20+rand.IntN(180)) * time.Millisecond) // a random moment
		proxy.cut()
	}
	close(stop)
	wg.Wait()
	for _, id := range ids {
		g.waitDelivered(id)
	}

	next, dups := 1, 0
	delivered := map[string]bool{}
	echoes := 0
	deadline := time.After(2 * time.Minute)
	for next <= published || len(delivered) < len(ids) || echoes < len(ids) {
		select {
		case m := <-got:
			switch {
			case m.Topic() == "field/flow":
				v, _ := strconv.Atoi(string(m.Payload()))
				switch {
				case v == next:
					next++
				case v < next && next-v <= window:
					dups++
				default:
					t.Fatalf("field/flow: got %d after %d", v, next-1)
				}
			case strings.HasPrefix(m.Topic(), "outpost/gw1/sms/status/") && strings.Contains(string(m.Payload()), `"state":"delivered"`):
				delivered[strings.TrimPrefix(m.Topic(), "outpost/gw1/sms/status/")] = true
			case m.Topic() == "outpost/gw1/sms/in" && strings.Contains(string(m.Payload()), "echo: flow"):
				echoes++
			}
		case <-deadline:
			t.Fatalf("the hub got %d of %d pass-through messages, %d of %d delivered states, %d echoes", next-1, published, len(delivered), len(ids), echoes)
		}
	}
	t.Logf("%d pass-through messages and %d SMS through 50 cuts; %d duplicates", published, len(ids), dups)
	if dups > 50*window {
		t.Errorf("%d duplicates: more than one window a cut", dups)
	}
}

// TestHubQueueDropOldestAndAge completes acceptance 4 of the sync issue:
// past max_messages the oldest go (the newest reach the hub, in order),
// past max_age the old go; both are counted, in status and on the hub.
func TestHubQueueDropOldestAndAge(t *testing.T) {
	const max, n = 30, 100
	h := prepareHub(t, "#")

	g := newGatewayWith(t, "", fmt.Sprintf("[hub]\nurl = \"tcp://%s\"\nmax_messages = %d\n[[hub.forward]]\ntopic = \"field/#\"\nqos = 1\n", h.addr, max))
	g.start()
	local, _ := g.subscribe("sensor-gateway")
	for i := 1; i <= n; i++ {
		if tok := local.Publish("field/x", 1, false, strconv.Itoa(i)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d not acknowledged under drop_oldest: %v", i, tok.Error())
		}
	}
	out, _, _ := g.cli("status")
	if !strings.Contains(out, fmt.Sprintf("down; %d message(s)", max)) || !strings.Contains(out, "dropped (full)") {
		t.Errorf("status:\n%s", out)
	}
	h.start()
	got := make(chan pahomqtt.Message, 1000)
	h.client("hq-subscriber", false, got)
	var field []int
	var stats string
	deadline := time.After(30 * time.Second)
	for len(field) == 0 || field[len(field)-1] != n || stats == "" {
		select {
		case m := <-got:
			switch m.Topic() {
			case "field/x":
				v, _ := strconv.Atoi(string(m.Payload()))
				field = append(field, v)
			case "outpost/gw1/hub/queue":
				stats = string(m.Payload())
			}
		case <-deadline:
			t.Fatalf("hub got field/x %v, stats %q", field, stats)
		}
	}
	for i := 1; i < len(field); i++ {
		if field[i] != field[i-1]+1 {
			t.Fatalf("field/x at the hub %v: not the newest in order", field)
		}
	}
	if len(field) > max || !strings.Contains(stats, `"dropped":`) || strings.Contains(stats, `"dropped":0`) {
		t.Errorf("%d of field/x at the hub (max %d); stats %s", len(field), max, stats)
	}

	// Age: with max_age = 1s and the hub away, what waits is dropped.
	g2 := newGatewayWith(t, "", fmt.Sprintf("[hub]\nurl = \"tcp://%s\"\nmax_age = \"1s\"\n[[hub.forward]]\ntopic = \"field/#\"\nqos = 1\n", freePort(t)))
	g2.start()
	c2, _ := g2.subscribe("sensor-2")
	for i := 1; i <= 10; i++ {
		c2.Publish("field/y", 1, false, strconv.Itoa(i)).WaitTimeout(5 * time.Second)
	}
	waitFor(t, "old messages to expire", 20*time.Second, func() bool {
		out, _, _ := g2.cli("status")
		return strings.Contains(out, "down; 0 message(s)") && strings.Contains(out, "expired (too old)")
	})
}

// TestHubSubscribeToLocal: [[hub.subscribe]] brings what the hub
// publishes on a topic to the devices on the local broker.
func TestHubSubscribeToLocal(t *testing.T) {
	h := newMosquittoHub(t)
	h.start()
	status := make(chan pahomqtt.Message, 10)
	hq := h.client("hq", true, status)
	if tok := hq.Subscribe("outpost/gw1/status", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	g := newGatewayWith(t, "", fmt.Sprintf("[hub]\nurl = \"tcp://%s\"\n[[hub.subscribe]]\ntopic = \"broadcast/#\"\nqos = 1\n", h.addr))
	g.start()
	got := make(chan pahomqtt.Message, 10)
	local := pahomqtt.NewClient(pahomqtt.NewClientOptions().AddBroker("tcp://" + g.mqtt).SetClientID("phone").
		SetDefaultPublishHandler(func(_ pahomqtt.Client, m pahomqtt.Message) { got <- m }))
	if tok := local.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer local.Disconnect(0)
	if tok := local.Subscribe("broadcast/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	for online := false; !online; {
		select {
		case m := <-status:
			online = string(m.Payload()) == "online"
		case <-time.After(20 * time.Second):
			t.Fatal("the gateway never came online at the hub")
		}
	}
	hq.Publish("broadcast/alert", 1, false, "cholera vaccination tomorrow").WaitTimeout(5 * time.Second)
	select {
	case m := <-got:
		if m.Topic() != "broadcast/alert" || string(m.Payload()) != "cholera vaccination tomorrow" {
			t.Errorf("got %s %q", m.Topic(), m.Payload())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the hub's broadcast did not reach the local broker")
	}
}
