package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestMQTTAuthAndACL is the users-and-ACL part of acceptance 5 of the sync
// issue: on a listener that is not loopback-only, anonymous clients,
// unknown users and wrong passwords are refused, and logged; a user may
// publish and subscribe only where an ACL rule lets it.
func TestMQTTAuthAndACL(t *testing.T) {
	hashOf := func(pw string) string {
		t.Helper()
		cmd := strings.NewReader(pw + "\n")
		var out strings.Builder
		if code := cmdPasswd(nil, cmd, &out); code != 0 {
			t.Fatalf("passwd: exit %d", code)
		}
		return strings.TrimSpace(out.String())
	}
	g := newGatewayWith(t, "", "")
	port := g.mqtt[strings.LastIndex(g.mqtt, ":")+1:]
	cfg := fmt.Sprintf(`gateway_id = "gw1"
data_dir = %q
[mqtt]
listen = "0.0.0.0:%s"
allow_anonymous = false
[[mqtt.user]]
name = "field1"
password_hash = %q
[[mqtt.user]]
name = "hq"
password_hash = %q
[[mqtt.acl]]
user = "hq"
topic = "#"
access = "readwrite"
[[mqtt.acl]]
user = "*"
topic = "outpost/gw1/sms/send"
access = "write"
[[mqtt.acl]]
user = "*"
topic = "field/%%u/#"
access = "readwrite"
`, g.dir+"/data", port, hashOf("s3cret"), hashOf("hq-pass"))
	writeConfig(t, g.config, cfg)
	g.start()

	connect := func(id, user, pw string, got chan pahomqtt.Message) (pahomqtt.Client, error) {
		opts := pahomqtt.NewClientOptions().AddBroker("tcp://" + g.mqtt).SetClientID(id).SetUsername(user).SetPassword(pw).SetAutoReconnect(false)
		if got != nil {
			opts.SetDefaultPublishHandler(func(_ pahomqtt.Client, m pahomqtt.Message) { got <- m })
		}
		c := pahomqtt.NewClient(opts)
		tok := c.Connect()
		if !tok.WaitTimeout(20 * time.Second) {
			return nil, fmt.Errorf("connect timed out")
		}
		if tok.Error() != nil {
			return nil, tok.Error()
		}
		t.Cleanup(func() { c.Disconnect(0) })
		return c, nil
	}
	for _, c := range []struct{ name, user, pw string }{
		{"anonymous", "", ""},
		{"unknown user", "nobody", "x"},
		{"wrong password", "field1", "guess"},
	} {
		t0 := time.Now()
		_, err := connect("bad-"+strings.ReplaceAll(c.name, " ", "-"), c.user, c.pw, nil)
		t.Logf("%s: %v after %v", c.name, err, time.Since(t0))
		if err == nil {
			t.Errorf("%s: connected", c.name)
		}
	}
	log := g.d.out.String()
	for _, want := range []string{"anonymous access is off", "unknown user", "wrong password"} {
		if !strings.Contains(log, want) {
			t.Errorf("the refusal %q is not logged", want)
		}
	}

	got := make(chan pahomqtt.Message, 10)
	hq, err := connect("hq", "hq", "hq-pass", got)
	if err != nil {
		t.Fatal(err)
	}
	if tok := hq.Subscribe("field/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	f, err := connect("field1-dev", "field1", "s3cret", nil)
	if err != nil {
		t.Fatalf("a good login is refused: %v", err)
	}
	// Outside its ACL: a subscription to everything is refused.
	st := f.Subscribe("#", 1, nil)
	st.WaitTimeout(5 * time.Second)
	if r := st.(*pahomqtt.SubscribeToken).Result()["#"]; r != 0x80 {
		t.Errorf("subscribe # outside the ACL: granted QoS %d, want failure (0x80)", r)
	}
	f.Publish("field/field1/x", 1, false, "mine").WaitTimeout(5 * time.Second)
	select {
	case m := <-got:
		if m.Topic() != "field/field1/x" {
			t.Errorf("hq got %s %q", m.Topic(), m.Payload())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hq got nothing from field1")
	}
	// Outside its ACL: the publish goes nowhere (an MQTT 3.1.1 client is
	// disconnected for it; MQTT 5 would get a reason code).
	f.Publish("field/other/x", 1, false, "not mine").WaitTimeout(2 * time.Second)
	select {
	case m := <-got:
		t.Errorf("hq got %s %q: a publish outside field1's ACL went through", m.Topic(), m.Payload())
	case <-time.After(time.Second):
	}
	if log := g.d.out.String(); !strings.Contains(log, "no ACL rule allows it") {
		t.Error("the ACL refusal is not logged")
	}

	// A send's "reply_to" must be a topic the sender may publish on:
	// Outpost publishes the reply for it.
	subscribeOK(t, hq, "outpost/gw1/sms/send/reply")
	app, err := connect("field1-app", "field1", "s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}
	publishJSON(t, app, "outpost/gw1/sms/send", `{"to":"+15555550100","text":"x","reply_to":"hq/inbox"}`)
	publishJSON(t, app, "outpost/gw1/sms/send", `{"to":"+15555550100","text":"y","reply_to":"field/field1/replies"}`)
	replies := map[string]string{}
	for deadline := time.After(10 * time.Second); len(replies) < 2; {
		select {
		case m := <-got:
			replies[m.Topic()] = string(m.Payload())
		case <-deadline:
			t.Fatalf("replies: %v", replies)
		}
	}
	if r := replies["outpost/gw1/sms/send/reply"]; !strings.Contains(r, `"ok":false`) || !strings.Contains(r, "may not publish there") {
		t.Errorf("reply_to outside the ACL: %q", r)
	}
	if r := replies["field/field1/replies"]; !strings.Contains(r, `"ok":true`) {
		t.Errorf("reply_to inside the ACL: %q", r)
	}
}

func writeConfig(t *testing.T, path, cfg string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestWebSocketAndLimits: browser apps reach the broker over WebSocket,
// with a password (anonymous clients are refused there), and a packet
// over max_packet_size goes nowhere.
func TestWebSocketAndLimits(t *testing.T) {
	var hash strings.Builder
	if code := cmdPasswd(nil, strings.NewReader("app-pass\n"), &hash); code != 0 {
		t.Fatal("passwd")
	}
	g := newGatewayWith(t, "", "")
	ws := freePort(t)
	writeConfig(t, g.config, fmt.Sprintf(`gateway_id = "gw1"
data_dir = %q
[mqtt]
listen = %q
allow_anonymous = true
websocket_listen = %q
max_packet_size = 1024
[[mqtt.user]]
name = "app"
password_hash = %q
`, g.dir+"/data", g.mqtt, ws, strings.TrimSpace(hash.String())))
	g.start()
	_, got := g.subscribe("local-anonymous") // loopback TCP: anonymous is fine there
	wsClient := func(id, user, pw string) (pahomqtt.Client, error) {
		c := pahomqtt.NewClient(pahomqtt.NewClientOptions().AddBroker("ws://" + ws).SetClientID(id).SetUsername(user).SetPassword(pw).SetAutoReconnect(false))
		tok := c.Connect()
		if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			return nil, fmt.Errorf("connect: %v", tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(0) })
		return c, nil
	}
	if _, err := wsClient("ws-anonymous", "", ""); err == nil {
		t.Error("an anonymous client connected over WebSocket")
	}
	app, err := wsClient("browser-app", "app", "app-pass")
	if err != nil {
		t.Fatal(err)
	}
	app.Publish("outpost/gw1/app/big", 1, false, strings.Repeat("x", 2000)).WaitTimeout(2 * time.Second)
	app2, err := wsClient("browser-app-2", "app", "app-pass")
	if err != nil {
		t.Fatal(err)
	}
	if tok := app2.Publish("outpost/gw1/app/hello", 1, false, "from a browser"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish over WebSocket: %v", tok.Error())
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-got:
			if m.Topic() == "outpost/gw1/app/big" {
				t.Fatal("a packet over max_packet_size went through")
			}
			if m.Topic() == "outpost/gw1/app/hello" {
				return
			}
		case <-deadline:
			t.Fatal("the WebSocket publish did not arrive")
		}
	}
}
