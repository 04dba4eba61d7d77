package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookPost is one POST the test's webhook receiver took.
type hookPost struct {
	Delivery string
	Event    string
	Message  struct {
		ID, From, Text, State, To string
	}
}

// hookReceiver is a real HTTP server on a loopback port that checks each
// POST's X-Outpost-Signature with the secret; it can be stopped
// (connection refused) and started again on the same port.
type hookReceiver struct {
	t      *testing.T
	secret string
	addr   string
	mu     sync.Mutex
	posts  []hookPost
	srv    *http.Server
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	r := &hookReceiver{t: t, secret: secret, addr: freePort(t)}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *hookReceiver) start() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mac := hmac.New(sha256.New, []byte(r.secret))
		mac.Write([]byte(req.Header.Get("X-Outpost-Timestamp") + "."))
		mac.Write(body)
		if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(want), []byte(req.Header.Get("X-Outpost-Signature"))) {
			r.t.Errorf("POST with a bad signature: %s", body)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p hookPost
		if err := json.Unmarshal(body, &p); err != nil {
			r.t.Errorf("POST body %s: %v", body, err)
		}
		p.Delivery = req.Header.Get("X-Outpost-Delivery")
		r.mu.Lock()
		r.posts = append(r.posts, p)
		r.mu.Unlock()
	})}
	go r.srv.Serve(ln)
}

func (r *hookReceiver) stop() { r.srv.Close() }

func (r *hookReceiver) taken() []hookPost {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookPost(nil), r.posts...)
}

// story is what the receiver heard of one sent message and its echo: the
// states POSTed for the message, in order, and the echo's sms.in.
func (r *hookReceiver) story(id, echo string) (states []string, echoes int) {
	for _, p := range r.taken() {
		switch {
		case p.Event == "sms.status" && p.Message.ID == id:
			states = append(states, p.Message.State)
		case p.Event == "sms.in" && p.Message.Text == echo:
			echoes++
		}
	}
	return states, echoes
}

type hookShown struct {
	Deliveries []struct {
		ID        int64
		Connector string
		State     string
		Attempts  int
	} `json:"deliveries"`
	Events []struct{ State, Detail string } `json:"events"`
}

func (g *gateway) hookShow(id string) hookShown {
	g.t.Helper()
	out, errs, code := g.cli("show", id, "--json")
	if code != 0 {
		g.t.Fatalf("show: exit %d: %s", code, errs)
	}
	var s hookShown
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		g.t.Fatalf("show output: %v\n%s", err, out)
	}
	return s
}

// The real daemon with the simulated modem POSTs a send's state changes
// (queued, sending, sent, delivered) and the echo that comes back
// (sms.in), signed. Then the receiver goes down; a second send and its
// echo happen, their events wait (attempts unchanged); the daemon is
// killed (-9), started again, and the receiver comes back: every event
// arrives, in order, none twice (at least once: only a POST that got
// through and whose answer was not yet recorded when the daemon died
// would come again, and there was none: the receiver was down).
func TestWebhookEndToEnd(t *testing.T) {
	r := newHookReceiver(t, "e2e secret")
	g := newGatewayWith(t, "", fmt.Sprintf(`[[webhook]]
name = "crm"
url = "http://%s/outpost"
events = ["sms.in", "sms.status"]
secret = "e2e secret"
timeout = "2s"
`, r.addr))
	env := "OUTPOST_RETRY=20ms,200ms"
	g.start(env)
	full := "queued,sending,sent,delivered"

	first := g.send("webhook one")
	waitFor(t, "the first send's events and its echo", 30*time.Second, func() bool {
		states, echoes := r.story(first, "echo: webhook one")
		return strings.Join(states, ",") == full && echoes == 1
	})

	r.stop()
	second := g.send("webhook two")
	g.waitDelivered(second)
	g.waitEcho("webhook two")
	// Each of its events is tried and waits: the first over and over.
	waitFor(t, "the second send's events tried while the receiver is down", 30*time.Second, func() bool {
		s := g.hookShow(second)
		refused := 0
		for _, e := range s.Events {
			if strings.Contains(e.Detail, "connection refused") {
				refused++
			}
		}
		return refused >= 12
	})
	for _, d := range g.hookShow(second).Deliveries {
		if d.Connector == "webhook" && (d.State == "failed" || d.Attempts > 1) {
			t.Fatalf("an outage used up a webhook delivery: %+v", d)
		}
	}
	g.d.kill()
	if n := len(r.taken()); n != 5 {
		t.Fatalf("%d POSTs before the receiver went down, want 5", n)
	}

	g.start(env)
	r.start()
	waitFor(t, "the second send's events and its echo after the restart", 30*time.Second, func() bool {
		states, echoes := r.story(second, "echo: webhook two")
		return strings.Join(states, ",") == full && echoes == 1
	})
	waitFor(t, "every webhook delivery recorded delivered", 30*time.Second, func() bool {
		for _, d := range g.hookShow(second).Deliveries {
			if d.Connector == "webhook" && d.State != "delivered" {
				return false
			}
		}
		return true
	})
	seen := map[string]bool{}
	for _, p := range r.taken() {
		if seen[p.Delivery] {
			t.Errorf("delivery %s POSTed twice", p.Delivery)
		}
		seen[p.Delivery] = true
	}
	if states, _ := r.story(first, "echo: webhook one"); strings.Join(states, ",") != full {
		t.Errorf("first send's states %v after all", states)
	}
	if n := len(r.taken()); n != 10 {
		t.Errorf("%d POSTs in all, want 10", n)
	}
}
