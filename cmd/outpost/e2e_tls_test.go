package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// testCerts makes a CA and a certificate for 127.0.0.1 signed by it, as
// PEM files in dir.
func testCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outpost test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

// TestTLSListenerAndHubLink is the TLS part of acceptance 5 of the sync
// issue: a device publishes over the local broker's TLS listener, and the
// message reaches a hub that speaks only TLS to the gateway, with
// certificates the test made.
func TestTLSListenerAndHubLink(t *testing.T) {
	h := newMosquittoHub(t)
	ca, cert, key := testCerts(t, t.TempDir())
	hubTLS := freePort(t)
	_, tlsPort, _ := net.SplitHostPort(hubTLS)
	conf, _ := os.ReadFile(h.conf)
	conf = append(conf, fmt.Sprintf("listener %s 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n", tlsPort, ca, cert, key)...)
	os.WriteFile(h.conf, conf, 0o600)
	h.start()
	got := make(chan pahomqtt.Message, 10)
	sub := h.client("hq", true, got) // on the hub's plain listener
	if tok := sub.Subscribe("field/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	localTLS := freePort(t)
	g := newGatewayWith(t, "", "")
	writeConfig(t, g.config, fmt.Sprintf(`gateway_id = "gw1"
data_dir = %q
[mqtt]
listen = %q
allow_anonymous = true
tls_listen = %q
tls_cert = %q
tls_key = %q
[hub]
url = "ssl://%s"
ca_file = %q
[[hub.forward]]
topic = "field/#"
qos = 1
`, filepath.Join(g.dir, "data"), g.mqtt, localTLS, cert, key, hubTLS, ca))
	g.start()

	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(pem)
	opts := pahomqtt.NewClientOptions().AddBroker("ssl://" + localTLS).SetClientID("tls-device").SetTLSConfig(&tls.Config{RootCAs: pool})
	c := pahomqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect over TLS: %v", tok.Error())
	}
	defer c.Disconnect(0)
	if tok := c.Publish("field/tls", 1, false, "over tls"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish over TLS: %v", tok.Error())
	}
	select {
	case m := <-got:
		if string(m.Payload()) != "over tls" {
			t.Errorf("hub got %q", m.Payload())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("nothing reached the hub over the TLS link")
	}
	// A client that does not trust the CA is not let in.
	bad := pahomqtt.NewClient(pahomqtt.NewClientOptions().AddBroker("ssl://" + localTLS).SetClientID("untrusting").SetAutoReconnect(false))
	if tok := bad.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		t.Error("a client that does not trust the test CA connected")
	}
}
