package http

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
	"golang.org/x/net/netutil"
)

// TCP is the HTTP API on a TCP address ([http] listen): the same routes
// as the socket, but every request but /healthz and /readyz needs
// "Authorization: Bearer <token>" (outpost token add), and a token of
// role user reaches only userRoutes.
type TCP struct {
	Addr string
	// TLSCert and TLSKey are PEM files; both empty: plain HTTP.
	TLSCert, TLSKey string
	// SessionIdle ends a console session unused this long (0:
	// DefaultSessionIdle).
	SessionIdle time.Duration
	ln          net.Listener
	fails       failures
	logins      turns // console.go
}

// The roles of a token.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// userRoutes are the routes a token of role user may call: send, read
// its own sends, read the inbox.
var userRoutes = map[string]bool{
	"POST /v1/messages":     true,
	"GET /v1/messages/{id}": true,
	"GET /v1/inbox":         true,
	"GET /v1/events":        true,
	"GET /healthz":          true,
	"GET /readyz":           true,
	"GET /metrics":          true,
}

// public are the routes that need no token: probes, and the API's
// description.
var public = map[string]bool{
	"GET /healthz":         true,
	"GET /readyz":          true,
	"GET /v1/openapi.json": true,
}

type tokenKey struct{}

// tokenOf is the token a TCP request came with (false on the socket).
func tokenOf(r *http.Request) (store.APIToken, bool) {
	t, ok := r.Context().Value(tokenKey{}).(store.APIToken)
	return t, ok
}

// claimed is who a request's "by" stands for: by itself on the socket
// (the CLI's --by), the token with by as a detail on TCP (a token holder
// cannot write someone else's name into the history and the audit).
func claimed(r *http.Request, by string) string {
	if id, _, ok := callerOf(r); ok {
		return bridge.ClaimedBy("http", id, by)
	}
	return who(by)
}

// HashToken is how a token is stored: the hex SHA-256 of its text. A
// token is 32 random bytes, so a plain hash is enough to keep a copy of
// the database from giving access.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// ListenTCP binds the TCP address (and loads the TLS pair): its errors
// name http.listen or http.tls_cert, so the daemon's start says which
// setting is wrong.
func (s *Server) ListenTCP() error {
	t := s.TCP
	ln, err := net.Listen("tcp", t.Addr)
	if err != nil {
		return fmt.Errorf("http.listen %q: %w", t.Addr, err)
	}
	ln = netutil.LimitListener(ln, maxTCPConns)
	if t.TLSCert != "" {
		pair, err := tls.LoadX509KeyPair(t.TLSCert, t.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("http.tls_cert %q / http.tls_key %q: %w", t.TLSCert, t.TLSKey, err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	}
	t.ln = ln
	return nil
}

// Anyone on the network can open connections before a token is checked:
// each costs memory (2,000 held idle took 34 MB), so a request must
// arrive whole within tcpReadTimeout, an idle connection is closed after
// tcpIdleTimeout, and past maxTCPConns a new one waits for a slot. (An
// event stream lives on: net/http lifts the read deadline once a request
// is read.)
var (
	tcpReadTimeout = time.Minute
	tcpIdleTimeout = 2 * time.Minute
	maxTCPConns    = 512
)

// TCPAddr is the address the TCP listener is bound to (tests bind port 0).
func (s *Server) TCPAddr() string { return s.TCP.ln.Addr().String() }

// tcpHandler serves mux on TCP: tokens and roles, and JSON errors for the
// mux's own 404 and 405.
func (s *Server) tcpHandler(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only a token says who asks on TCP: the socket's headers are
		// the CLI's, never a remote client's.
		r.Header.Del(ChannelHeader)
		r.Header.Del(ByHeader)
		if s.serveConsole(w, r) { // console.go
			return
		}
		_, pattern := mux.Handler(r)
		if !public[pattern] {
			// A console session (cookie) is the other way in.
			if sess, found, ok := s.checkSession(w, r); found {
				if !ok {
					return
				}
				r = withSession(r, sess)
			} else {
				tok, ok := s.checkToken(w, r)
				if !ok {
					return
				}
				r = r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok))
			}
			id, role, _ := callerOf(r)
			// No pattern: the mux's JSON 404 or 405 below says why.
			if role != RoleAdmin && pattern != "" && !userRoutes[pattern] {
				writeError(w, http.StatusForbidden, fmt.Errorf("%s has role %s: %s %s needs role admin", id, role, r.Method, r.URL.Path))
				return
			}
			r.Header.Set(ByHeader, id)
			r = r.WithContext(bridge.WithCaller(r.Context(), "http", id))
		}
		if pattern == "" {
			mux.ServeHTTP(&jsonErrors{ResponseWriter: w, path: r.URL.Path, method: r.Method}, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// jsonErrors turns the mux's text 404 and 405 into JSON.
type jsonErrors struct {
	http.ResponseWriter
	path, method string
	wrote        bool
}

func (j *jsonErrors) WriteHeader(code int) {
	j.wrote = true
	j.ResponseWriter.Header().Del("X-Content-Type-Options")
	msg := fmt.Sprintf("no route %s", j.path)
	if code == http.StatusMethodNotAllowed {
		msg = fmt.Sprintf("%s not allowed on %s (allowed: %s)", j.method, j.path, j.ResponseWriter.Header().Get("Allow"))
	}
	writeError(j.ResponseWriter, code, errors.New(msg))
}

func (j *jsonErrors) Write(b []byte) (int, error) {
	if !j.wrote {
		j.WriteHeader(http.StatusOK)
	}
	return len(b), nil // the mux's text body: the JSON one is written
}

// checkToken answers 401 (after the remote host's delay) unless r has a
// known, unexpired bearer token.
func (s *Server) checkToken(w http.ResponseWriter, r *http.Request) (store.APIToken, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	refuse := func(why string) (store.APIToken, bool) {
		n := s.TCP.fails.fail(host)
		delay := min(250*time.Millisecond<<min(n-1, 5), 8*time.Second)
		s.Log.Warn("refused HTTP API request", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "reason", why, "failures", n)
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
		writeError(w, http.StatusUnauthorized, errors.New(why))
		return store.APIToken{}, false
	}
	auth := r.Header.Get("Authorization")
	text, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || strings.TrimSpace(text) == "" {
		return refuse(`no token: send "Authorization: Bearer <token>" (outpost token add)`)
	}
	var tok store.APIToken
	err = s.Router.Store.View(r.Context(), func(tx *store.Tx) (err error) {
		tok, err = tx.TokenByHash(HashToken(strings.TrimSpace(text)))
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return refuse("unknown token")
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("token check: %w", err))
		return store.APIToken{}, false
	}
	now := s.Router.Store.Now()
	if !tok.ExpiresAt.IsZero() && !now.Before(tok.ExpiresAt) {
		return refuse(fmt.Sprintf("token %q expired at %s", tok.Name, tok.ExpiresAt.Format(time.RFC3339)))
	}
	s.TCP.fails.clear(host)
	// last_used is written at most once a minute a token (an hour for
	// scrapes): the SD card would see a write for every request
	// otherwise.
	if now.Sub(tok.LastUsed) > touchEvery(r) { // metrics.go
		if err := s.Router.Store.Update(r.Context(), func(tx *store.Tx) error { return tx.TouchToken(tok.Name) }); err != nil {
			s.Log.Warn("token's last use not recorded", "token", tok.Name, "err", err)
		}
	}
	return tok, true
}

// failures are the failed token checks by remote host, forgotten after
// failureMemory; at most maxFailureHosts hosts are kept (the oldest go).
type failures struct {
	mu sync.Mutex
	m  map[string]failure
}

type failure struct {
	n    int
	last time.Time
}

const (
	failureMemory   = 15 * time.Minute
	maxFailureHosts = 4096
)

// fail counts a failure of host and returns how many it has had.
func (f *failures) fail(host string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if f.m == nil {
		f.m = map[string]failure{}
	}
	e := f.m[host]
	if now.Sub(e.last) > failureMemory {
		e.n = 0
	}
	e.n++
	e.last = now
	if _, ok := f.m[host]; !ok && len(f.m) >= maxFailureHosts {
		oldest := ""
		for h, v := range f.m {
			if oldest == "" || v.last.Before(f.m[oldest].last) {
				oldest = h
			}
		}
		delete(f.m, oldest)
	}
	f.m[host] = e
	return e.n
}

func (f *failures) clear(host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, host)
}

// healthz answers 200 while the process serves.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// Ready is the answer of /readyz.
type Ready struct {
	OK bool `json:"ok"`
	// Store is "writable", else why not.
	Store string `json:"store"`
	// ModemsReady are the modems that can send now.
	ModemsReady []string `json:"modems_ready"`
	// Modems is each modem's state.
	Modems map[string]string `json:"modems"`
	// Links are the hub and XMPP links' states (details only).
	Links map[string]any `json:"links"`
}

// readyz answers 200 when the store can begin a write and at least one
// modem can send (CanSend), else 503; the body says which.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	body := Ready{Store: "writable", ModemsReady: []string{}, Modems: map[string]string{}, Links: s.Router.Links()}
	if err := s.Router.Store.Update(ctx, func(*store.Tx) error { return nil }); err != nil {
		body.Store = err.Error()
	}
	for id, st := range s.Router.Modems() {
		var v struct {
			State string `json:"state"`
		}
		b, _ := json.Marshal(st)
		json.Unmarshal(b, &v)
		body.Modems[id] = v.State
		ready := v.State == "ready"
		if s.CanSend != nil {
			ready = s.CanSend(st)
		}
		ready = ready && !s.Router.Paused(id) // an operator's pause
		if ready {
			body.ModemsReady = append(body.ModemsReady, id)
		}
	}
	slices.Sort(body.ModemsReady)
	body.OK = body.Store == "writable" && len(body.ModemsReady) > 0
	code := http.StatusOK
	if !body.OK {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}
