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
	// reserved are Outpost's own output topics: no client may publish
	// there (Outpost's inline publishes are not checked).
	reserved []string

	mu       sync.Mutex
	failures map[string]int // by remote host
	// loopback lists the listeners bound to loopback addresses only:
	// anonymous clients are let in there alone.
	loopback map[string]bool
}

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
	h := &authHook{allowAnonymous: allowAnonymous, users: map[string][]byte{}, acl: acl, log: log, failures: map[string]int{}, loopback: map[string]bool{}}
	for _, t := range ownTopics {
		h.reserved = append(h.reserved, base+t)
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
	host := remoteHost(cl)
	h.mu.Lock()
	h.failures[host]++
	n := h.failures[host]
	h.mu.Unlock()
	delay := min(250*time.Millisecond<<min(n-1, 5), 8*time.Second)
	h.log.Warn("refused MQTT login", "client", cl.ID, "user", string(cl.Properties.Username), "remote", cl.Net.Remote, "reason", why, "failures", n)
	time.Sleep(delay) // on this client's goroutine only
	return false
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
	hash, ok := h.users[name]
	if !ok {
		// Compare anyway, so an unknown user costs what a wrong password does.
		bcrypt.CompareHashAndPassword(dummyHash(), pk.Connect.Password)
		return h.refuse(cl, "unknown user")
	}
	if bcrypt.CompareHashAndPassword(hash, pk.Connect.Password) != nil {
		return h.refuse(cl, "wrong password")
	}
	h.mu.Lock()
	delete(h.failures, remoteHost(cl))
	h.mu.Unlock()
	return true
}

func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	if write {
		for _, r := range h.reserved {
			if covers(r, topic) {
				h.log.Warn("MQTT publish refused: the topic is Outpost's own output", "client", cl.ID, "user", user, "topic", topic)
				return false
			}
		}
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
	r := strings.Split(rule, "/")
	t := strings.Split(topic, "/")
	for i, p := range r {
		if p == "#" {
			return true
		}
		if i >= len(t) {
			return false
		}
		switch {
		case t[i] == "#":
			return false // the subscription reaches further than the rule
		case p == "+":
			continue
		case t[i] == "+" || p != t[i]:
			return false
		}
	}
	return len(r) == len(t)
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
