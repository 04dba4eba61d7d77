package http

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// GET /v1/events is a stream of server-sent events for the console:
// "inbound" (a message came in: {"id", "from", "channel"}), "status" (a
// destination of a message changed state: {"id", "state", "to"?,
// "detail"?}), "modem" (a modem's status changed: {"id"}), "reload"
// (events were dropped: read everything again), and a comment line
// every heartbeat. The router's hooks only ever try to hand an event on:
// a slow browser never slows the router, it gets "reload" instead.

// eventBuffer is how many events wait for one client before it is told
// to reload.
const eventBuffer = 64

// At most maxStreamsPerCaller streams a token or a session, and
// maxStreams in all: each holds a connection and its buffers (1,000 took
// 45 MB), and the box is small.
const (
	maxStreamsPerCaller = 8
	maxStreams          = 128
)

// eventHeartbeat is how often an idle stream gets a comment line, so
// that proxies and the browser see it alive.
const eventHeartbeat = 20 * time.Second

type event struct {
	name string
	data []byte
	// admin marks what only an admin may see in full; user roles get
	// brief instead.
	admin bool
	brief []byte
}

type subscriber struct {
	ch      chan event
	dropped chan struct{} // one signal: events were dropped
	closed  chan struct{} // logout, user or token removed, token expired
	session string        // the session's hash, "" for a token
	user    string
	token   string // the token's name, "" for a session
	role    string
	once    sync.Once
}

func (c *subscriber) close() { c.once.Do(func() { close(c.closed) }) }

type events struct {
	once sync.Once
	done <-chan struct{}
	mu   sync.Mutex
	subs map[*subscriber]bool
	// open counts subs: with no console open (the usual case) the hooks
	// return before they build an event, and a state change costs no
	// JSON.
	open atomic.Int32
}

// start hooks the router: after commit, each inbound message and state
// change is offered to every subscriber without waiting.
func (e *events) start(ctx context.Context, r *bridge.Router) {
	e.once.Do(func() {
		e.done = ctx.Done()
		e.subs = map[*subscriber]bool{}
		r.OnStatus(func(c bridge.StatusChange) {
			if e.open.Load() == 0 {
				return
			}
			full, _ := json.Marshal(map[string]any{"id": c.MessageID, "state": c.State, "to": c.To, "detail": c.Detail, "at": c.At})
			brief, _ := json.Marshal(map[string]any{"id": c.MessageID, "state": c.State})
			e.publish(event{name: "status", data: full, admin: true, brief: brief})
		})
		r.OnInboundTx(func(tx *store.Tx, m *store.Message) error {
			if e.open.Load() == 0 {
				return nil
			}
			b, _ := json.Marshal(map[string]any{"id": m.ID, "from": m.FromAddr, "channel": m.Channel})
			tx.AfterCommit(func() { e.publish(event{name: "inbound", data: b}) })
			return nil
		})
		r.OnModemStatus(func(id string, _ any) {
			if e.open.Load() == 0 {
				return
			}
			b, _ := json.Marshal(map[string]any{"id": id})
			e.publish(event{name: "modem", data: b})
		})
	})
}

func (e *events) publish(ev event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for c := range e.subs {
		select {
		case c.ch <- ev:
		default:
			select {
			case c.dropped <- struct{}{}:
			default:
			}
		}
	}
}

// add subscribes c unless its caller (or everyone) has all the streams
// allowed; the error says which.
func (e *events) add(c *subscriber) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.subs) >= maxStreams {
		return fmt.Errorf("%d event streams open already: try again later", maxStreams)
	}
	n := 0
	for o := range e.subs {
		if o.session == c.session && o.token == c.token {
			n++
		}
	}
	if n >= maxStreamsPerCaller {
		return fmt.Errorf("%d event streams open already with this token or session: close one (a page or tab) first", n)
	}
	e.subs[c] = true
	e.open.Store(int32(len(e.subs)))
	return nil
}

func (e *events) remove(c *subscriber) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.subs, c)
	e.open.Store(int32(len(e.subs)))
}

// closeWhere ends the streams that match.
func (e *events) closeWhere(match func(*subscriber) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for c := range e.subs {
		if match(c) {
			c.close()
		}
	}
}

func (e *events) closeSession(hash string) {
	e.closeWhere(func(c *subscriber) bool { return c.session != "" && c.session == hash })
}

func (e *events) closeUser(name string) {
	e.closeWhere(func(c *subscriber) bool { return c.session != "" && c.user == name })
}

func (e *events) closeToken(name string) {
	e.closeWhere(func(c *subscriber) bool { return c.session == "" && c.token == name })
}

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok || s.events.subs == nil {
		writeError(w, http.StatusNotImplemented, fmt.Errorf("no event stream here"))
		return
	}
	c := &subscriber{ch: make(chan event, eventBuffer), dropped: make(chan struct{}, 1), closed: make(chan struct{}), role: RoleAdmin}
	if sess, ok := sessionOf(r); ok {
		c.session, c.user, c.role = sess.Hash, sess.User, sess.Role
	} else if _, role, ok := callerOf(r); ok {
		c.role = role
	}
	// A token's stream ends when the token expires, as its next request
	// would be refused (the store's clock, as checkToken).
	var expired <-chan time.Time
	if tok, ok := tokenOf(r); ok {
		c.token = tok.Name
		if !tok.ExpiresAt.IsZero() {
			t := time.NewTimer(tok.ExpiresAt.Sub(s.Router.Store.Now()))
			defer t.Stop()
			expired = t.C
		}
	}
	if err := s.events.add(c); err != nil {
		writeError(w, http.StatusTooManyRequests, err)
		return
	}
	defer s.events.remove(c)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 3000\n: hello\n\n")
	fl.Flush()
	beat := time.NewTicker(eventHeartbeat)
	defer beat.Stop()
	for {
		select {
		case ev := <-c.ch:
			data := ev.data
			if ev.admin && c.role != RoleAdmin {
				data = ev.brief
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, data)
		case <-c.dropped:
			for len(c.ch) > 0 {
				<-c.ch
			}
			fmt.Fprint(w, "event: reload\ndata: {}\n\n")
		case <-beat.C:
			fmt.Fprint(w, ": ping\n\n")
		case <-c.closed:
			fmt.Fprint(w, "event: bye\ndata: {}\n\n")
			return
		case <-expired:
			fmt.Fprint(w, "event: bye\ndata: {}\n\n")
			return
		case <-s.events.done:
			return
		case <-r.Context().Done():
			return
		}
		fl.Flush()
	}
}
