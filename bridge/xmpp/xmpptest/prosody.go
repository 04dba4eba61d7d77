// Package xmpptest runs real XMPP peers for tests: a Prosody server on a
// loopback port with a certificate of its own, and clients on slixmpp
// (Python) that a test drives and whose every received stanza it sees.
//
// Debian's prosody and python3-slixmpp packages provide them
// (scripts/test.sh installs both). Without them the tests skip, or fail
// when OUTPOST_REQUIRE_TOOLS is set.
//
//	p := xmpptest.StartProsody(t, "outpost.test", map[string]string{"outpost": "pw", "alice": "pw"})
//	alice := xmpptest.Connect(t, p, "alice", "pw")
//	// the code under test logs in as outpost@outpost.test to p.Addr(),
//	// trusting p.TLSConfig() (or p.CAFile)
//	id := alice.Send("outpost@outpost.test", "+15555550100 hello", xmpptest.RequestReceipt())
//	alice.Expect(5*time.Second, func(e xmpptest.Event) bool { return e.Kind == "receipt" && e.ReceiptFor == id })
//	alice.ExpectBody(5*time.Second, "outpost@outpost.test", "reply")
//	p.Stop() // an outage: alice gets a "disconnected" event
//	p.Start()
//	alice.Reconnect()
//
// A Prosody and its Clients belong to the test that made them: their
// methods fail that test, so call them from its goroutine only.
package xmpptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Prosody is a Prosody server of one test, listening for clients (c2s,
// STARTTLS required) on a loopback port that stays the same across Stop
// and Start, as do its accounts, rosters, stored messages and certificate.
type Prosody struct {
	// Domain is the server's one virtual host: accounts are user@Domain.
	Domain string
	// CAFile is the PEM certificate of the CA that signed the server's
	// certificate (for Domain, "localhost" and 127.0.0.1).
	CAFile string

	t      testing.TB
	bin    string
	ctl    string
	dir    string
	config string
	log    string
	out    string
	addr   string
	caPEM  []byte

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// toolMissing fails or skips the test for a missing external tool, as
// the repository's other tests that need one do.
func toolMissing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("OUTPOST_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s is not installed (scripts/test.sh installs it)", what)
	}
	t.Skipf("%s is not installed; scripts/test.sh installs it", what)
}

func lookTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	// The Debian package puts them in /usr/bin, which a trimmed PATH may lack.
	p := "/usr/bin/" + name
	if _, err := os.Stat(p); err != nil {
		toolMissing(t, name)
	}
	return p
}

// StartProsody starts a Prosody server for domain with the given accounts
// (local part → password) and stops it when the test ends. It fails the
// test if the server does not listen within 10 seconds.
func StartProsody(t testing.TB, domain string, accounts map[string]string) *Prosody {
	t.Helper()
	bin := lookTool(t, "prosody")
	ctl := lookTool(t, "prosodyctl")
	dir := t.TempDir()
	p := &Prosody{
		Domain: domain,
		CAFile: filepath.Join(dir, "ca.pem"),
		t:      t,
		bin:    bin,
		ctl:    ctl,
		dir:    dir,
		config: filepath.Join(dir, "prosody.cfg.lua"),
		log:    filepath.Join(dir, "prosody.log"),
		out:    filepath.Join(dir, "prosody.out"),
		addr:   freeAddr(t),
	}
	p.writeCerts()
	p.writeConfig()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("prosody on %s:\n%s", p.addr, p.LogTail())
		}
		p.Kill()
	})

	users := make([]string, 0, len(accounts))
	for u := range accounts {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		p.Register(u, accounts[u])
	}
	p.Start()
	return p
}

// Register creates the account user@Domain, or sets its password if it
// exists; the server need not be running, and a running one sees the
// change at the next login.
func (p *Prosody) Register(user, password string) {
	p.t.Helper()
	out, err := exec.Command(p.ctl, "--config", p.config, "register", user, p.Domain, password).CombinedOutput()
	if err != nil {
		p.t.Fatalf("xmpptest: prosodyctl register %s@%s: %v\n%s", user, p.Domain, err, out)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Addr is the host:port clients connect to, "127.0.0.1:port".
func (p *Prosody) Addr() string { return p.addr }

// JID is user's bare JID on this server.
func (p *Prosody) JID(user string) string { return user + "@" + p.Domain }

// TLSConfig trusts only the test's CA and expects the certificate of Domain.
func (p *Prosody) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	return &tls.Config{RootCAs: pool, ServerName: p.Domain, MinVersion: tls.VersionTLS12}
}

// Start starts the server (again) on the same port, with the same data,
// and waits until it accepts connections.
func (p *Prosody) Start() {
	p.t.Helper()
	if p.Running() {
		p.t.Fatal("xmpptest: Start: prosody is already running")
	}
	var logStart int64
	if fi, err := os.Stat(p.log); err == nil {
		logStart = fi.Size()
	}
	out, err := os.OpenFile(p.out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.bin, "--config", p.config, "-F")
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = out, out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		out.Close()
		p.t.Fatalf("xmpptest: starting prosody: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		out.Close()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()

	// Prosody that cannot bind its port logs it and runs on, and whatever
	// holds the port would then answer the dial: only its own word that
	// it listens counts.
	listening := "Activated service 'c2s' on [127.0.0.1]:" + portOf(p.addr)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			p.t.Fatalf("xmpptest: prosody exited before listening on %s (%v); log %s:\n%s", p.addr, cmd.ProcessState, p.log, p.LogTail())
		default:
		}
		var err error
		log, _ := os.ReadFile(p.log)
		log = log[min(logStart, int64(len(log))):]
		if bytes.Contains(log, []byte("Failed to open server port")) {
			p.Kill()
			p.t.Fatalf("xmpptest: prosody cannot listen on %s (taken by another program?); log %s:\n%s", p.addr, p.log, p.LogTail())
		}
		if !bytes.Contains(log, []byte(listening)) {
			err = errors.New("no " + listening + " in the log")
		} else if c, derr := net.DialTimeout("tcp", p.addr, time.Second); derr != nil {
			err = derr
		} else {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("xmpptest: prosody is not listening on %s after 10s: %v; log %s:\n%s", p.addr, err, p.log, p.LogTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running reports whether the server process is alive.
func (p *Prosody) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop shuts the server down as an administrator would (SIGTERM: it
// closes every stream with a system-shutdown error) and waits for it to
// exit, killing it after 10 seconds.
func (p *Prosody) Stop() { p.signal(syscall.SIGTERM, 10*time.Second) }

// Kill ends the server at once (SIGKILL), as a crash or power cut would:
// clients see their connections drop with no stream error.
func (p *Prosody) Kill() { p.signal(syscall.SIGKILL, 0) }

func (p *Prosody) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			p.t.Errorf("xmpptest: prosody did not stop within %v of %v; killing it", grace, sig)
			cmd.Process.Kill()
		}
	}
	<-done
}

// LogTail is the end of the server's log and of its console output, for
// a failing test to show.
func (p *Prosody) LogTail() string {
	var b strings.Builder
	for _, f := range []string{p.log, p.out} {
		data, err := os.ReadFile(f)
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		fmt.Fprintf(&b, "==> %s <==\n%s\n", f, tail(data, 150))
	}
	return b.String()
}

func tail(data []byte, lines int) string {
	data = bytes.TrimRight(data, "\n")
	i := len(data)
	for n := 0; n < lines && i > 0; n++ {
		i = bytes.LastIndexByte(data[:i], '\n')
		if i < 0 {
			return string(data)
		}
	}
	return string(data[i+1:])
}

func (p *Prosody) writeConfig() {
	_, port, _ := net.SplitHostPort(p.addr)
	q := luaString
	// No s2s and no HTTP: nothing listens beyond the one c2s port and
	// nothing resolves names or leaves the machine. Stream management
	// (smacks) stays off: go-xmpp cannot parse it.
	conf := fmt.Sprintf(`-- written by xmpptest for one test
run_as_root = true
daemonize = false
pidfile = %s
data_path = %s
log = { debug = %s }
interfaces = { "127.0.0.1" }
c2s_interfaces = { "127.0.0.1" }
c2s_ports = { %s }
c2s_direct_tls_ports = {}
legacy_ssl_ports = {}
s2s_ports = {}
http_ports = {}
https_ports = {}
c2s_require_encryption = true
authentication = "internal_hashed"
certificates = %s
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "carbons" }
modules_disabled = { "s2s"; "s2s_auth_certs" }

VirtualHost %s
	ssl = { certificate = %s; key = %s }
`, q(filepath.Join(p.dir, "prosody.pid")), q(filepath.Join(p.dir, "data")), q(p.log), port,
		q(filepath.Join(p.dir, "certs")), q(p.Domain),
		q(filepath.Join(p.dir, "certs", p.Domain+".crt")), q(filepath.Join(p.dir, "certs", p.Domain+".key")))
	if err := os.WriteFile(p.config, []byte(conf), 0o600); err != nil {
		p.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(p.dir, "data"), 0o700); err != nil {
		p.t.Fatal(err)
	}
}

func luaString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// writeCerts makes a CA and a server certificate it signs, so that
// clients verify the server as they would a real one.
func (p *Prosody) writeCerts() {
	t := p.t
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "xmpptest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: p.Domain},
		DNSNames:     []string{p.Domain, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certs := filepath.Join(p.dir, "certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		data []byte
	}{
		{p.CAFile, p.caPEM},
		{filepath.Join(certs, p.Domain+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})},
		{filepath.Join(certs, p.Domain+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
	} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
