package mqtt

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/crypto/bcrypt"
)

// User is a local broker account; Hash is a bcrypt hash ("outpost
// passwd" prints one).
type User struct {
	Name, Hash string
}

// ACL is one access rule. Rules are tried in order and the first whose
// user and topic match decides; no match is a refusal. Topic is a filter
// in which %u stands for the user name and %c for the client id.
type ACL struct {
	User   string // a name, or "*" for every authenticated user
	Topic  string
	Access string // "read", "write", "readwrite" or "deny"
}

// authHook authenticates clients against the configured users (bcrypt)
// and checks every subscribe and publish against the ACL, denying by
// default. Anonymous clients are let in only when allowed (the config
// allows that only on a loopback listener); with no ACL rules configured
// they, and users, may use every topic, as on the default single-box
// setup. Failed logins are logged and answered slowly.
type authHook struct {
	mochi.HookBase
	allowAnonymous bool
	users          map[string][]byte
	acl            []ACL
	log            *slog.Logger
	// Outpost's own output topics (ownTopics under base): no client may
	// publish there (Outpost's inline publishes are not checked). Read
	// on every publish, so matched without splitting the topic: the
	// exact ones, and the levels under a "/#" one (and that level itself).
	base            string
	reservedExact   map[string]bool
	reservedParents []string

	mu       sync.Mutex
	failures map[string]failure // by remote host
	pruned   time.Time
	// maxHosts bounds failures; a host's failures are forgotten
	// failureMemory after its last one.
	maxHosts      int
	failureMemory time.Duration
	// checks bounds the bcrypt comparisons running at once (each takes
	// tens of milliseconds of a core); a login that waits checkWait for
	// one is refused.
	checks    chan struct{}
	checkWait time.Duration
	compare   func(hash, password []byte) error
	now       func() time.Time
	sleep     func(time.Duration)
	// loopback lists the listeners bound to loopback addresses only:
	// anonymous clients are let in there alone.
	loopback map[string]bool
}

// failure is a remote host's failed logins.
type failure struct {
	n    int
	last time.Time // monotonic
}

// The failed-login map's bounds and the bcrypt checks run at once.
const (
	maxFailureHosts      = 4096
	failureMemory        = 15 * time.Minute
	maxConcurrentChecks  = 2
	checkWait            = 2 * time.Second
	errTooManyLoginsNote = "too many logins being checked at once"
)

// listenerIsLoopback records whether the listener id is bound to a
// loopback address.
func (h *authHook) listenerIsLoopback(id string, a net.Addr) {
	tcp, ok := a.(*net.TCPAddr)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.loopback[id] = ok && tcp.IP.IsLoopback()
}

// ownTopics are the API topics only Outpost publishes on, under
// <prefix>/<gateway_id>/: what a client published there other apps would
// take as Outpost's.
var ownTopics = []string{"sms/in", "sms/status/#", "xform/#", "modem/#", "status", "sms/send/reply", "hub/refused", "hub/queue"}

func newAuthHook(allowAnonymous bool, users []User, acl []ACL, base string, log *slog.Logger) *authHook {
	h := &authHook{allowAnonymous: allowAnonymous, users: map[string][]byte{}, acl: acl, log: log, failures: map[string]failure{}, loopback: map[string]bool{},
		maxHosts: maxFailureHosts, failureMemory: failureMemory, checks: make(chan struct{}, maxConcurrentChecks), checkWait: checkWait,
		compare: bcrypt.CompareHashAndPassword, now: time.Now, sleep: time.Sleep}
	h.base, h.reservedExact = base, map[string]bool{}
	for _, t := range ownTopics {
		if parent, ok := strings.CutSuffix(t, "/#"); ok {
			h.reservedExact[parent] = true
			h.reservedParents = append(h.reservedParents, parent+"/")
		} else {
			h.reservedExact[t] = true
		}
	}
	for _, u := range users {
		h.users[u.Name] = []byte(u.Hash)
	}
	return h
}

func (h *authHook) ID() string { return "outpost-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func remoteHost(cl *mochi.Client) string {
	host, _, err := net.SplitHostPort(cl.Net.Remote)
	if err != nil {
		return cl.Net.Remote
	}
	return host
}

// refuse logs a failed login and slows the next ones from the same host:
// 250 ms doubling to 8 s, so guessing passwords is slow.
func (h *authHook) refuse(cl *mochi.Client, why string) bool {
	n := h.fail(remoteHost(cl))
	delay := min(250*time.Millisecond<<min(n-1, 5), 8*time.Second)
	h.log.Warn("refused MQTT login", "client", cl.ID, "user", string(cl.Properties.Username), "remote", cl.Net.Remote, "reason", why, "failures", n)
	h.sleep(delay) // on this client's goroutine only
	return false
}

// fail counts a failed login from host and returns how many it made
// lately. The map is pruned of hosts quiet for failureMemory (once a
// minute, and whenever it is full); when it is full of recent ones, the
// host that failed least recently is forgotten.
func (h *authHook) fail(host string) int {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	f, known := h.failures[host]
	if known && now.Sub(f.last) > h.failureMemory {
		f = failure{}
	}
	if !known && len(h.failures) >= h.maxHosts || now.Sub(h.pruned) > time.Minute {
		h.pruned = now
		var oldest string
		for k, v := range h.failures {
			if now.Sub(v.last) > h.failureMemory {
				delete(h.failures, k)
			} else if oldest == "" || v.last.Before(h.failures[oldest].last) {
				oldest = k
			}
		}
		if !known && len(h.failures) >= h.maxHosts {
			delete(h.failures, oldest)
		}
	}
	f.n++
	f.last = now
	h.failures[host] = f
	return f.n
}

// check compares a password with a bcrypt hash, at most
// maxConcurrentChecks at once: a login that cannot start one within
// checkWait is refused (busy), so a flood of logins neither takes every
// core nor piles up without bound.
func (h *authHook) check(hash, password []byte) (ok, busy bool) {
	select {
	case h.checks <- struct{}{}:
	default:
		t := time.NewTimer(h.checkWait)
		defer t.Stop()
		select {
		case h.checks <- struct{}{}:
		case <-t.C:
			return false, true
		}
	}
	defer func() { <-h.checks }()
	return h.compare(hash, password) == nil, false
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	name := string(pk.Connect.Username)
	if name == "" {
		if !h.allowAnonymous {
			return h.refuse(cl, "anonymous access is off (configure mqtt users)")
		}
		h.mu.Lock()
		local := h.loopback[cl.Net.Listener]
		h.mu.Unlock()
		if !local {
			return h.refuse(cl, "anonymous access only on a loopback listener")
		}
		return true
	}
	hash, known := h.users[name]
	if !known {
		// Compare anyway, so an unknown user costs what a wrong password does.
		hash = dummyHash()
	}
	ok, busy := h.check(hash, pk.Connect.Password)
	switch {
	case busy:
		h.log.Warn("refused MQTT login: "+errTooManyLoginsNote, "client", cl.ID, "user", name, "remote", cl.Net.Remote)
		return false
	case !known:
		return h.refuse(cl, "unknown user")
	case !ok:
		return h.refuse(cl, "wrong password")
	}
	h.mu.Lock()
	delete(h.failures, remoteHost(cl))
	h.mu.Unlock()
	return true
}

// reservedTopic reports whether topic is one of Outpost's own outputs.
func (h *authHook) reservedTopic(topic string) bool {
	rest, ok := strings.CutPrefix(topic, h.base)
	if !ok {
		return false
	}
	if h.reservedExact[rest] {
		return true
	}
	// Every admin/…/reply is Outpost's: the answers to the operations,
	// also the one that says an operation is unknown.
	if strings.HasPrefix(rest, "admin/") && strings.HasSuffix(rest, "/reply") {
		return true
	}
	for _, p := range h.reservedParents {
		if strings.HasPrefix(rest, p) {
			return true
		}
	}
	return false
}

func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	if write && h.reservedTopic(topic) {
		h.log.Warn("MQTT publish refused: the topic is Outpost's own output", "client", cl.ID, "user", user, "topic", topic)
		return false
	}
	if len(h.acl) == 0 {
		return user != "" || h.allowAnonymous
	}
	for _, r := range h.acl {
		if r.User != "*" && r.User != user || r.User == "*" && user == "" {
			continue
		}
		filter := r.Topic
		if strings.Contains(filter, "%") {
			// A name put into a filter must stay one topic level: a
			// client id "#" would turn "devices/%c/#" into every device.
			if strings.Contains(filter, "%u") && !oneLevel(user) || strings.Contains(filter, "%c") && !oneLevel(cl.ID) {
				h.log.Warn("MQTT access refused: a user name or client id with '/', '+' or '#' cannot fill an ACL pattern",
					"client", cl.ID, "user", user, "topic", topic, "rule", r.Topic)
				return false
			}
			filter = strings.NewReplacer("%u", user, "%c", cl.ID).Replace(filter)
		}
		if !covers(filter, topic) {
			continue
		}
		ok := r.Access == "readwrite" || write && r.Access == "write" || !write && r.Access == "read"
		if !ok {
			h.log.Warn("MQTT access refused by the ACL", "client", cl.ID, "user", user, "topic", topic, "write", write, "rule", r.Topic)
		}
		return ok
	}
	h.log.Warn("MQTT access refused: no ACL rule allows it", "client", cl.ID, "user", user, "topic", topic, "write", write)
	return false
}

// oneLevel reports whether s can stand for one topic level.
func oneLevel(s string) bool { return s != "" && !strings.ContainsAny(s, "/+#") }

// covers reports whether the filter rule matches topic, which may itself
// be a subscription filter: a filter is covered only if everything it can
// match is.
func covers(rule, topic string) bool {
	// Level by level, without splitting (it runs for every publish).
	for {
		p, rmore, rok := strings.Cut(rule, "/")
		if p == "#" {
			return true
		}
		t, tmore, tok := strings.Cut(topic, "/")
		switch {
		case t == "#":
			return false // the subscription reaches further than the rule
		case p == "+":
		case t == "+" || p != t:
			return false
		}
		if !rok || !tok {
			if rok && !tok {
				return rmore == "#" // "a/#" covers "a" too
			}
			return !rok && !tok
		}
		rule, topic = rmore, tmore
	}
}

var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)
	return h
})

// HashPassword returns the bcrypt hash "outpost passwd" prints.
func HashPassword(password []byte) (string, error) {
	password = bytes.TrimRight(password, "\r\n")
	h, err := bcrypt.GenerateFromPassword(password, bcrypt.DefaultCost)
	return string(h), err
}
