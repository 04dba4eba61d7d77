package http_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	bhttp "github.com/outpost-sms/outpost/bridge/http"
)

// serveTCP runs the API on the socket and on a loopback TCP port, and
// returns the socket's request function and the TCP base URL.
func serveTCP(t *testing.T, router *bridge.Router) (func(method, path, body string) (int, []byte), string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "outpost.sock")
	srv := &bhttp.Server{Socket: sock, Router: router, Log: router.Log, TCP: &bhttp.TCP{Addr: "127.0.0.1:0"}}
	if err := srv.ListenTCP(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.TCPAddr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return socketClient(t, sock), base
}

// socketClient sends requests to the API on sock (as request does, for
// a server started elsewhere).
func socketClient(t *testing.T, sock string) func(method, path, body string) (int, []byte) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	return func(method, path, body string) (int, []byte) {
		t.Helper()
		var resp *http.Response
		var err error
		for range 500 {
			req, _ := http.NewRequest(method, "http://outpost"+path, strings.NewReader(body))
			if resp, err = c.Do(req); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond) // the socket is not there yet
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
}

// tcpCall sends a request with token (none when empty) and returns the
// status and the decoded JSON object (nil for a list; the test fails on
// a body that is not JSON).
func tcpCall(t *testing.T, base, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var j any
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %q", method, path, resp.StatusCode, b)
	}
	v, _ := j.(map[string]any) // nil for a list

	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, v
}

func TestTCPTokensAndRoles(t *testing.T) {
	router := newRouter(t)
	router.Add(phones{}) // addr_test.go
	sock, base := serveTCP(t, router)
	add := func(body string) string {
		t.Helper()
		code, b := sock("POST", "/v1/tokens", body)
		if code != 201 {
			t.Fatalf("token add %s: %d %s", body, code, b)
		}
		var v struct{ Token string }
		json.Unmarshal(b, &v)
		return v.Token
	}
	user, admin, short := add(`{"name":"desk","role":"user"}`), add(`{"name":"ops","role":"admin"}`), add(`{"name":"brief","role":"user","expires":"1ms"}`)
	if code, b := sock("POST", "/v1/tokens", `{"name":"desk","role":"user"}`); code != 409 {
		t.Errorf("second desk: %d %s", code, b)
	}
	if code, b := sock("POST", "/v1/tokens", `{"name":"x","role":"root"}`); code != 400 || !strings.Contains(string(b), "user or admin") {
		t.Errorf("role root: %d %s", code, b)
	}
	if code, b := sock("GET", "/v1/tokens", ""); code != 200 || strings.Contains(string(b), user) || strings.Contains(string(b), "hash") || !strings.Contains(string(b), `"role": "admin"`) {
		t.Errorf("token list: %d %s", code, b)
	}

	code, v := tcpCall(t, base, user, "POST", "/v1/messages", `{"to":"+15555550100","text":"hi"}`)
	if code != 201 {
		t.Fatalf("user send: %d %v", code, v)
	}
	mine := v["id"].(string)
	code, v = tcpCall(t, base, user, "GET", "/v1/messages/"+mine, "")
	if code != 200 || v["from_addr"] != "token:desk" {
		t.Errorf("user reads its send: %d %v", code, v)
	}
	code, v = tcpCall(t, base, admin, "POST", "/v1/messages", `{"to":"+15555550101","text":"from ops"}`)
	if code != 201 {
		t.Fatalf("admin send: %d %v", code, v)
	}
	theirs := v["id"].(string)
	if code, v := tcpCall(t, base, user, "GET", "/v1/messages/"+theirs, ""); code != 403 || v["error"] == nil {
		t.Errorf("user reads another's send: %d %v", code, v)
	}
	if code, v := tcpCall(t, base, admin, "GET", "/v1/messages/"+mine, ""); code != 200 {
		t.Errorf("admin reads desk's send: %d %v", code, v)
	}
	if code, v := tcpCall(t, base, user, "GET", "/v1/inbox", ""); code != 200 {
		t.Errorf("user inbox: %d %v", code, v)
	}
	for _, r := range [][2]string{{"GET", "/v1/audit"}, {"POST", "/v1/messages/" + mine + "/retry"}, {"GET", "/v1/tokens"}, {"GET", "/v1/status"}} {
		if code, v := tcpCall(t, base, user, r[0], r[1], ""); code != 403 || !strings.Contains(v["error"].(string), "admin") {
			t.Errorf("user %s %s: %d %v", r[0], r[1], code, v)
		}
	}
	code, v = tcpCall(t, base, admin, "GET", "/v1/audit", "")
	if code != 200 {
		t.Errorf("admin audit: %d %v", code, v)
	}
	// The audit says who added the tokens (the socket's caller, channel
	// http here: the test sends no CLI header).
	if code, b := sock("GET", "/v1/audit", ""); code != 200 || !strings.Contains(string(b), "token/add") {
		t.Errorf("audit: %d %s", code, b)
	}

	time.Sleep(5 * time.Millisecond)
	if code, v := tcpCall(t, base, short, "GET", "/v1/inbox", ""); code != 401 || !strings.Contains(v["error"].(string), "expired") {
		t.Errorf("expired token: %d %v", code, v)
	}
	if code, v := tcpCall(t, base, "", "GET", "/v1/inbox", ""); code != 401 || v["error"] == nil {
		t.Errorf("no token: %d %v", code, v)
	}
	// A success forgets the failures; then two wrong tokens, the second
	// slower.
	tcpCall(t, base, admin, "GET", "/v1/inbox", "")
	timed := func() time.Duration {
		t0 := time.Now()
		if code, _ := tcpCall(t, base, "opt_wrong", "GET", "/v1/inbox", ""); code != 401 {
			t.Errorf("wrong token: %d", code)
		}
		return time.Since(t0)
	}
	first, second := timed(), timed()
	t.Logf("wrong token: %v, then %v", first, second)
	if second < first+200*time.Millisecond {
		t.Errorf("second wrong token took %v, first %v: not slowed", second, first)
	}
	tcpCall(t, base, admin, "GET", "/v1/inbox", "")

	// JSON errors for the mux's own answers.
	if code, v := tcpCall(t, base, admin, "GET", "/v1/nowhere", ""); code != 404 || v["error"] == nil {
		t.Errorf("404: %d %v", code, v)
	}
	if code, v := tcpCall(t, base, admin, "PUT", "/v1/inbox", ""); code != 405 || v["error"] == nil {
		t.Errorf("405: %d %v", code, v)
	}
	if code, v := tcpCall(t, base, admin, "POST", "/v1/messages", `{"to":"+15555550100","text":"`+strings.Repeat("x", 2<<20)+`"}`); code != 413 || v["error"] == nil {
		t.Errorf("413: %d %v", code, v)
	}
	// A token's "by" is a detail: the audit says which token asked.
	if code, v := tcpCall(t, base, admin, "POST", "/v1/messages/"+theirs+"/cancel", `{"by":"mallory"}`); code != 200 {
		t.Errorf("admin cancel: %d %v", code, v)
	}
	if code, v := tcpCall(t, base, admin, "POST", "/v1/bans", `{"addr":"+15550009999","by":"mallory"}`); code != 200 {
		t.Errorf("admin ban: %d %v", code, v)
	}
	_, b := sock("GET", "/v1/audit", "")
	var audit struct {
		Audit []struct{ Who, Channel, Op string }
	}
	json.Unmarshal(b, &audit)
	ops := map[string]string{}
	for _, e := range audit.Audit {
		ops[e.Op] = e.Who + " via " + e.Channel
	}
	for _, op := range []string{"cancel", "ban"} {
		if want := `token:ops (for "mallory") via http`; ops[op] != want {
			t.Errorf("audit of %s: %q, want %q (all: %s)", op, ops[op], want, b)
		}
	}
	// Removed: refused.
	if code, b := sock("DELETE", "/v1/tokens/desk", ""); code != 200 {
		t.Errorf("token rm: %d %s", code, b)
	}
	if code, b := sock("DELETE", "/v1/tokens/desk", ""); code != 404 {
		t.Errorf("token rm again: %d %s", code, b)
	}
	if code, _ := tcpCall(t, base, user, "GET", "/v1/inbox", ""); code != 401 {
		t.Errorf("removed token: %d", code)
	}
}

func TestHealthAndReady(t *testing.T) {
	router := newRouter(t)
	_, base := serveTCP(t, router)
	if code, v := tcpCall(t, base, "", "GET", "/healthz", ""); code != 200 || v["ok"] != true {
		t.Errorf("healthz: %d %v", code, v)
	}
	code, v := tcpCall(t, base, "", "GET", "/readyz", "")
	if code != 503 || v["store"] != "writable" || v["ok"] != false {
		t.Errorf("readyz, no modem: %d %v", code, v)
	}
	router.ModemStatus("m1", map[string]any{"id": "m1", "state": "connecting"})
	if code, v := tcpCall(t, base, "", "GET", "/readyz", ""); code != 503 {
		t.Errorf("readyz, modem connecting: %d %v", code, v)
	}
	router.ModemStatus("m1", map[string]any{"id": "m1", "state": "ready"})
	router.LinkStatus("hub", map[string]any{"state": "down"})
	code, v = tcpCall(t, base, "", "GET", "/readyz", "")
	if code != 200 || v["ok"] != true || len(v["modems_ready"].([]any)) != 1 || v["links"].(map[string]any)["hub"] == nil {
		t.Errorf("readyz, modem ready: %d %v", code, v)
	}
	router.Store.Close()
	if code, v := tcpCall(t, base, "", "GET", "/readyz", ""); code != 503 || v["store"] == "writable" {
		t.Errorf("readyz, store closed: %d %v", code, v)
	}
}

// With tls_cert and tls_key the TCP listener is HTTPS (a client that
// trusts the certificate gets in; plain HTTP does not); a bad pair is
// an error naming http.tls_cert.
func TestTCPWithTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outpost.local"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"outpost.local"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)

	router := newRouter(t)
	bad := &bhttp.Server{Socket: filepath.Join(dir, "bad.sock"), Router: router, Log: router.Log, TCP: &bhttp.TCP{Addr: "127.0.0.1:0", TLSCert: keyFile, TLSKey: keyFile}}
	if err := bad.ListenTCP(); err == nil || !strings.Contains(err.Error(), "http.tls_cert") {
		t.Errorf("a key as the certificate: %v", err)
	}
	srv := &bhttp.Server{Socket: filepath.Join(dir, "outpost.sock"), Router: router, Log: router.Log, TCP: &bhttp.TCP{Addr: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile}}
	if err := srv.ListenTCP(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	pool := x509.NewCertPool()
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get("https://" + srv.TCPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("https /healthz: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	// Over TLS the console's cookies are Secure.
	if resp, err = c.Get("https://" + srv.TCPAddr() + "/login"); err != nil || !strings.Contains(resp.Header.Get("Set-Cookie"), "; Secure") {
		t.Errorf("login page over TLS: %v, Set-Cookie %q", err, resp.Header.Get("Set-Cookie"))
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + srv.TCPAddr() + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP on the TLS listener answered 200")
		}
	}
}
