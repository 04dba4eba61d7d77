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
	"strconv"
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
		FormID                    string   `json:"form_id"`
		Tags                      []string `json:"tags"`
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
	// hold, when set, is called with each POST before it is answered.
	hold func(hookPost)
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
		hold := r.hold
		r.mu.Unlock()
		if hold != nil {
			hold(p)
		}
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

// A kill -9 while a POST is with the receiver (it took the body, its answer
// not yet recorded) loses nothing: after the restart that event is POSTed
// again, with the same X-Outpost-Delivery, and is the only one POSTed
// twice (at least once: the repeat a receiver drops by that header).
func TestWebhookKillDuringPost(t *testing.T) {
	r := newHookReceiver(t, "k")
	g := newGatewayWith(t, "", fmt.Sprintf(`[[webhook]]
name = "crm"
url = "http://%s/outpost"
events = ["sms.status"]
secret = "k"
`, r.addr))
	env := "OUTPOST_RETRY=20ms,200ms"
	arrived, release := make(chan hookPost, 1), make(chan struct{})
	r.mu.Lock()
	r.hold = func(p hookPost) {
		if p.Message.State == "sending" {
			select {
			case arrived <- p:
			default:
			}
			<-release
		}
	}
	r.mu.Unlock()
	g.start(env)
	id := g.send("kill during post")
	var held hookPost
	select {
	case held = <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("no sms.status sending POST within 30s")
	}
	g.d.kill()
	r.mu.Lock()
	r.hold = nil
	r.mu.Unlock()
	close(release)
	g.start(env)
	defer func() {
		if t.Failed() {
			states, _ := r.story(id, "")
			t.Logf("states %v; show: %+v", states, g.hookShow(id))
		}
	}()
	// The SMS may have been in the middle of its own attempt too: it is
	// sent again or settled by its report; what matters is the webhook.
	waitFor(t, "the send settled and every event of it POSTed", 30*time.Second, func() bool {
		settled := false
		for _, d := range g.hookShow(id).Deliveries {
			switch {
			case d.Connector == "sms":
				settled = d.State == "sent" || d.State == "delivered"
			case d.State != "delivered":
				return false
			}
		}
		return settled
	})
	posts := r.taken()
	count := map[string]int{}
	var order []string
	for _, p := range posts {
		if count[p.Delivery]++; count[p.Delivery] == 1 {
			order = append(order, p.Delivery)
		}
	}
	for d, n := range count {
		if n > 1 && d != held.Delivery {
			t.Errorf("delivery %s POSTed %d times; only %s was in flight at the kill", d, n, held.Delivery)
		}
	}
	if count[held.Delivery] != 2 {
		t.Errorf("the event in flight at the kill was POSTed %d times, want 2", count[held.Delivery])
	}
	// In order: nothing created after the held event went out before it
	// was POSTed again.
	num := func(s string) int { n, _ := strconv.Atoi(s); return n }
	again := 0
	for i, p := range posts {
		if p.Delivery == held.Delivery && i > 0 {
			again = i
		}
	}
	for _, q := range posts[:again] {
		if num(q.Delivery) > num(held.Delivery) {
			t.Errorf("delivery %s POSTed before the held %s went again", q.Delivery, held.Delivery)
		}
	}
	states, _ := r.story(id, "")
	if len(states) < 4 || states[0] != "queued" || states[1] != "sending" || states[2] != "sending" {
		t.Errorf("states POSTed: %v", states)
	}
	t.Logf("POSTed %v (delivery ids in order %v)", states, order)
}
