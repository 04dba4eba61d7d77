package email

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// relayed is what the test relay got: one mail.
type relayed struct {
	from, to, user, data string
	tls                  bool
}

// testRelay is an SMTP relay (go-smtp) on 127.0.0.1:0 that takes AUTH
// PLAIN only over TLS, with a certificate for 127.0.0.1 whose CA is in
// the returned PEM file.
type testRelay struct {
	mu     sync.Mutex
	got    []relayed
	addr   string
	refuse string        // answered to every mail when set ("550 …")
	news   chan struct{} // a mail was taken
}

type relaySession struct {
	r    *testRelay
	conn *smtp.Conn
	cur  relayed
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "gw" || pass != "s3cret" {
			return smtp.ErrAuthFailed
		}
		s.cur.user = user
		return nil
	}), nil
}
func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error { s.cur.from = from; return nil }
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error   { s.cur.to = to; return nil }
func (s *relaySession) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	s.cur.data = string(b)
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.refuse != "" {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: s.r.refuse}
	}
	s.r.got = append(s.r.got, s.cur)
	select {
	case s.r.news <- struct{}{}:
	default:
	}
	return nil
}
func (s *relaySession) Reset()        {}
func (s *relaySession) Logout() error { return nil }

// startRelay serves a relay: with STARTTLS when starttls, with implicit
// TLS when implicit, plain otherwise. It returns the relay and the CA
// file that verifies it.
func startRelay(t *testing.T, starttls, implicit bool) (*testRelay, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	r := &testRelay{news: make(chan struct{}, 1)}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &relaySession{r: r, conn: c}, nil }))
	s.Domain = "relay.test"
	var ln net.Listener
	switch {
	case implicit:
		ln, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	default:
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if starttls {
			s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return r, caFile
}

// waitMails waits until the relay took n mails, and returns them.
func (r *testRelay) waitMails(t *testing.T, n int) []relayed {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if got := r.mails(); len(got) >= n {
			return got
		}
		select {
		case <-r.news:
		case <-deadline:
			t.Fatalf("the relay took %d mails in 10s, want %d: %+v", len(r.mails()), n, r.mails())
		}
	}
}

func (r *testRelay) mails() []relayed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]relayed(nil), r.got...)
}

// deliverVia delivers one answer through a connector with opt.
func deliverVia(t *testing.T, opt Options) (bridge.Outcome, error) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opt.Domain = "sms.example.org"
	c, err := New(opt, bridge.New(st, nil))
	if err != nil {
		t.Fatal(err)
	}
	text := "on its way"
	m := store.Message{ID: "m1", Direction: store.In, Peer: "+15555550100", Text: &text, CreatedAt: time.Now()}
	return c.Deliver(context.Background(), m, store.Delivery{MessageID: "m1", Connector: "email", Recipient: "nurse@example.org"})
}

// TestRelayTLS: over smtp:// the mail goes after STARTTLS when the relay
// offers it, with AUTH PLAIN; over smtps:// on implicit TLS; a relay
// without STARTTLS gets nothing when require_tls is set (the mail waits:
// an outage), and the password is not sent to it in clear.
func TestRelayTLS(t *testing.T) {
	r, ca := startRelay(t, true, false)
	if _, err := deliverVia(t, Options{SMTP: "smtp://" + r.addr, User: "gw", Password: "s3cret", CAFile: ca, RequireTLS: true}); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	got := r.mails()
	if len(got) != 1 || !got[0].tls || got[0].user != "gw" || got[0].from != "+15555550100@sms.example.org" || got[0].to != "nurse@example.org" ||
		!strings.Contains(got[0].data, "on its way") || !strings.Contains(got[0].data, "Subject: SMS from +15555550100") {
		t.Fatalf("STARTTLS relay got %+v", got)
	}
	// A password the relay refuses is the gateway's problem: the mail
	// waits (an outage), it is not failed.
	if _, err := deliverVia(t, Options{SMTP: "smtp://" + r.addr, User: "gw", Password: "wrong", CAFile: ca}); !bridge.IsOutage(err) || bridge.IsPermanent(err) ||
		!strings.Contains(err.Error(), `relay refused email.user "gw"`) {
		t.Errorf("refused password: %v", err)
	}
	// Without the CA the relay's certificate is not trusted: no mail.
	if _, err := deliverVia(t, Options{SMTP: "smtp://" + r.addr}); err == nil || !bridge.IsOutage(err) {
		t.Errorf("untrusted relay certificate: %v", err)
	}

	r, ca = startRelay(t, false, true)
	if _, err := deliverVia(t, Options{SMTP: "smtps://" + r.addr, User: "gw", Password: "s3cret", CAFile: ca}); err != nil {
		t.Fatalf("smtps: %v", err)
	}
	if got := r.mails(); len(got) != 1 || !got[0].tls || got[0].user != "gw" {
		t.Fatalf("smtps relay got %+v", got)
	}

	r, _ = startRelay(t, false, false)
	_, err := deliverVia(t, Options{SMTP: "smtp://" + r.addr, RequireTLS: true})
	if !bridge.IsOutage(err) || !strings.Contains(err.Error(), "offers no STARTTLS and email.require_tls is set") {
		t.Errorf("require_tls without STARTTLS: %v", err)
	}
	if got := r.mails(); len(got) != 0 {
		t.Errorf("mail sent in clear: %+v", got)
	}
}

// TestSendToMailto: the connector delivers to mailto: addresses: a send
// request to one (from any channel) is stored with a delivery to it and
// mailed from Outpost's own address; without a relay such a send is
// refused before anything is stored.
func TestSendToMailto(t *testing.T) {
	relay, _ := startRelay(t, false, false)
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	router := bridge.New(st, nil)
	router.RetryMin, router.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	c, err := New(Options{Domain: "sms.example.org", SMTP: "smtp://" + relay.addr}, router)
	if err != nil {
		t.Fatal(err)
	}
	router.Add(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { router.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	id, err := router.Submit(context.Background(), bridge.SendRequest{To: []string{"mailto:ops@example.org"}, Text: "pump 3 is down", Source: "mqtt"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(relay.mails()) == 0 {
		if time.Now().After(deadline) {
			v, _ := router.Message(context.Background(), id)
			t.Fatalf("nothing mailed: %+v", v.Deliveries)
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := relay.mails()[0]
	if m.from != "outpost@sms.example.org" || m.to != "ops@example.org" || !strings.Contains(m.data, "pump 3 is down") ||
		!strings.Contains(m.data, "Subject: Message via Outpost (mqtt)") {
		t.Fatalf("mailed %+v", m)
	}

	noRelay, err := New(Options{Domain: "sms.example.org"}, bridge.New(st, nil))
	if err != nil {
		t.Fatal(err)
	}
	r2 := bridge.New(st, nil)
	r2.Add(noRelay)
	if _, err := r2.Submit(context.Background(), bridge.SendRequest{To: []string{"mailto:ops@example.org"}, Text: "x", Source: "mqtt"}); err == nil ||
		!strings.Contains(err.Error(), "email.smtp") {
		t.Fatalf("a send to mailto: without a relay: %v", err)
	}
}

// A send of data (data_hex) to a mailto: address is refused before
// anything is stored: a mail carries text.
func TestDataToMailtoRefused(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "outpost.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	router := bridge.New(st, nil)
	c, err := New(Options{Domain: "sms.example.org", SMTP: "smtp://127.0.0.1:1"}, router)
	if err != nil {
		t.Fatal(err)
	}
	router.Add(c)
	_, err = router.Submit(context.Background(), bridge.SendRequest{To: []string{"mailto:ops@example.org"}, Data: []byte{1, 2}, Source: "http"})
	if !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), "data_hex cannot be sent to a mailto: address") {
		t.Fatalf("data to mailto: %v", err)
	}
	if inbox, _ := router.Inbox(context.Background(), 10); len(inbox) != 0 {
		t.Fatalf("stored %+v", inbox)
	}
}
