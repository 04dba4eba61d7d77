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
}

func writeConfig(t *testing.T, path, cfg string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}
