package config

import (
	"strings"
	"testing"
)

// [http]: off by default; listen, tls_cert and tls_key checked with the
// field's path.
func TestHTTPSection(t *testing.T) {
	c, err := Parse("f.toml", []byte("gateway_id = \"gw\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Listen != "" {
		t.Fatalf("http.listen default %q, want off", c.HTTP.Listen)
	}
	c, err = Parse("f.toml", []byte("gateway_id = \"gw\"\n[http]\nlisten = \"0.0.0.0:8080\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || c.HTTP.Listen != "0.0.0.0:8080" || c.HTTP.TLSKey != "k.pem" {
		t.Fatalf("%v %+v", err, c.HTTP)
	}
	for body, want := range map[string]string{
		"listen = \"8080\"":                         "http.listen",
		"listen = \"h:99999\"":                      "http.listen",
		"listen = \":8080\"\ntls_cert = \"c.pem\"":  "http.tls_cert/tls_key",
		"tls_cert = \"c.pem\"\ntls_key = \"k.pem\"": "http.tls_cert",
		"session_idle = \"30s\"":                    "http.session_idle",
	} {
		c, err := Parse("f.toml", []byte("gateway_id = \"gw\"\n[http]\n"+body+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: want an error naming %s, got %v", body, want, err)
		}
	}
	if _, err := Parse("f.toml", []byte("gateway_id = \"gw\"\n[http]\nport = 1\n")); err == nil || !strings.Contains(err.Error(), "http.port") {
		t.Errorf("unknown key: %v", err)
	}
}
