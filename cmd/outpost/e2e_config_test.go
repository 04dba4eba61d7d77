package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestConfigShow: outpost config show (GET /v1/config) prints what the
// daemon runs, defaults filled in, and never a secret: not the hub's
// password, a webhook's secret or token, a user's password hash.
func TestConfigShow(t *testing.T) {
	g := newGatewayWith(t, "", `[hub]
url = "tcp://gw:url-pass@127.0.0.1:9"
username = "gw"
password = "hub-pass"

[[webhook]]
name = "ops"
url = "http://127.0.0.1:9/hook?token=hook-token"
events = ["sms.in"]
secret = "hook-secret"

[[mqtt.user]]
name = "field"
password_hash = "$2a$10$abcdefghijklmnopqrstuuFh3Zr9QJx1m9Xz3k9bq1v5m5Q5GQ5yG"
`)
	g.start()
	out, errOut, code := g.cli("config", "show", "--json")
	if code != 0 {
		t.Fatalf("config show: exit %d: %s", code, errOut)
	}
	for _, secret := range []string{"url-pass", "hub-pass", "hook-token", "hook-secret", "$2a$10$"} {
		if strings.Contains(out, secret) {
			t.Errorf("config show gives away %q:\n%s", secret, out)
		}
	}
	var c struct {
		GatewayID string `json:"gateway_id"`
		Hub       struct{ URL, Username, Password string }
		MQTT      struct {
			Listen string
			User   []struct {
				Name         string
				PasswordHash string `json:"password_hash"`
			}
		}
		Webhook []struct{ Name, URL, Secret string }
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if c.GatewayID != "gw1" || c.Hub.Username != "gw" || c.Hub.Password != "xxxxx" || !strings.Contains(c.Hub.URL, "gw:xxxxx@") ||
		c.MQTT.Listen != g.mqtt || len(c.MQTT.User) != 1 || c.MQTT.User[0].PasswordHash != "xxxxx" ||
		len(c.Webhook) != 1 || c.Webhook[0].Secret != "xxxxx" || !strings.Contains(c.Webhook[0].URL, "token=xxxxx") {
		t.Errorf("config show --json: %+v", c)
	}
	// The TOML form is the file's own.
	text, _, code := g.cli("config", "show")
	if code != 0 || !strings.Contains(text, `gateway_id = "gw1"`) || !strings.Contains(text, "[hub]") || strings.Contains(text, "hub-pass") {
		t.Errorf("config show: exit %d\n%s", code, text)
	}
}
