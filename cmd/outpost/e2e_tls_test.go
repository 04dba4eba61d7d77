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

// certs are PEM files made by testCerts: a CA, a server certificate for
// 127.0.0.1 and a client certificate, each with its key, signed by the CA.
type certs struct {
	ca, cert, key, clientCert, clientKey string
}

func testCerts(t *testing.T, dir string) certs {
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
	issue := func(name string, serial int64, cn string, usage x509.ExtKeyUsage) (cert, key string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalECPrivateKey(k)
		return write(name+".pem", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", keyDER)
	}
	c := certs{ca: write("ca.pem", "CERTIFICATE", caDER)}
	c.cert, c.key = issue("server", 2, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	c.clientCert, c.clientKey = issue("gw1", 3, "gw1", x509.ExtKeyUsageClientAuth)
	return c
}

// TestTLSListenerAndHubLink is the TLS part of acceptance 5 of the sync
// issue: a device publishes over the local broker's TLS listener, and the
// message reaches a hub that speaks only TLS to the gateway and wants its
// client certificate (mutual TLS), with certificates the test made.
func TestTLSListenerAndHubLink(t *testing.T) {
	h := newMosquittoHub(t)
	tc := testCerts(t, t.TempDir())
	ca, cert, key := tc.ca, tc.cert, tc.key
	hubTLS := freePort(t)
	_, tlsPort, _ := net.SplitHostPort(hubTLS)
	conf, _ := os.ReadFile(h.conf)
	conf = append(conf, fmt.Sprintf("listener %s 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n", tlsPort, ca, cert, key)...)
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
cert_file = %q
key_file = %q
[[hub.forward]]
topic = "field/#"
qos = 1
`, filepath.Join(g.dir, "data"), g.mqtt, localTLS, cert, key, hubTLS, ca, tc.clientCert, tc.clientKey))
	g.start()

	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(pem)
	// The hub wants a client certificate: one without is refused, so the
	// gateway's link proves it presents its own.
	anon := pahomqtt.NewClient(pahomqtt.NewClientOptions().AddBroker("ssl://" + hubTLS).SetClientID("no-cert").
		SetTLSConfig(&tls.Config{RootCAs: pool}).SetAutoReconnect(false).SetConnectRetry(false))
	if tok := anon.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		t.Error("the hub let in a client without a certificate: the test proves nothing of mutual TLS")
	}
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
