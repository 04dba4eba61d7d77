package http

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/outpost-sms/outpost/store"
	"golang.org/x/crypto/bcrypt"
)

// The web console: its pages are plain files embedded in the binary
// (console/), served on the TCP listener only; they call the /v1 API with
// a session cookie instead of a bearer token.

//go:embed console
var consoleFiles embed.FS

const (
	sessionCookie = "outpost_session"
	// loginCookie carries the login form's CSRF token (double submit):
	// there is no session yet to hold it.
	loginCookie = "outpost_login"
	// CSRFHeader carries a session's CSRF token on the console's API
	// calls; plain forms send it as the field "csrf".
	CSRFHeader = "X-CSRF-Token"
	// DefaultSessionIdle is how long a session lasts unused.
	DefaultSessionIdle = 12 * time.Hour
)

type sessionKey struct{}

// sessionOf is the console session a TCP request came with.
func sessionOf(r *http.Request) (store.Session, bool) {
	s, ok := r.Context().Value(sessionKey{}).(store.Session)
	return s, ok
}

// callerOf is who a TCP request is ("token:NAME" or "user:NAME") and its
// role; false on the socket.
func callerOf(r *http.Request) (id, role string, ok bool) {
	if tok, ok := tokenOf(r); ok {
		return "token:" + tok.Name, tok.Role, true
	}
	if s, ok := sessionOf(r); ok {
		return "user:" + s.User, s.Role, true
	}
	return "", "", false
}

func randomText() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// serveConsole serves the console's own paths (/, /login, /logout, the
// files under /console/) and reports whether r was one of them.
func (s *Server) serveConsole(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.consolePage(w, r)
	case p == "/login" && r.Method == http.MethodGet:
		s.loginPage(w, r, http.StatusOK, "")
	case p == "/login" && r.Method == http.MethodPost:
		s.login(w, r)
	case p == "/logout" && r.Method == http.MethodPost:
		s.logout(w, r)
	case p == "/favicon.ico":
		// Browsers ask for it on any page, the API's JSON errors too: an
		// empty answer, not a refused request slowing the next login.
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(p, "/console/") && r.Method == http.MethodGet:
		s.consoleFile(w, r)
	case p == "/" || p == "/login" || p == "/logout":
		writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s not allowed on %s", r.Method, p))
	default:
		return false
	}
	return true
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	// Everything the pages load is the daemon's own: no CDN, no inline
	// script, and no other site may frame them.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}

func (s *Server) consoleFile(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	b, err := fs.ReadFile(consoleFiles, name)
	if err != nil || strings.HasSuffix(name, ".html") {
		writeError(w, http.StatusNotFound, fmt.Errorf("no file %s", r.URL.Path))
		return
	}
	securityHeaders(w)
	// Revalidated on every load, so a new binary's files are taken at
	// once; unchanged ones cost a 304.
	sum := sha256.Sum256(b)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// consolePage is the console itself, with the session's CSRF token in
// it; without a session, the login page.
func (s *Server) consolePage(w http.ResponseWriter, r *http.Request) {
	sess, err := s.sessionFromCookie(r)
	if err != nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	page, _ := consoleFiles.ReadFile("console/index.html")
	page = bytes.ReplaceAll(page, []byte("{{csrf}}"), []byte(html.EscapeString(sess.CSRF)))
	page = bytes.ReplaceAll(page, []byte("{{user}}"), []byte(html.EscapeString(sess.User)))
	page = bytes.ReplaceAll(page, []byte("{{role}}"), []byte(html.EscapeString(sess.Role)))
	securityHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(page)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, code int, problem string) {
	token := randomText()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: token, Path: "/login", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	page, _ := consoleFiles.ReadFile("console/login.html")
	page = bytes.ReplaceAll(page, []byte("{{csrf}}"), []byte(token))
	msg := ""
	if problem != "" {
		msg = `<p class="error" role="alert" id="problem">` + html.EscapeString(problem) + `</p>`
	}
	page = bytes.ReplaceAll(page, []byte("{{problem}}"), []byte(msg))
	securityHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(page)
}

// sameOrigin is false when a browser says the request comes from another
// site (Origin), a second guard beside the CSRF tokens.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// remoteHost is the address failures are counted by.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// slowDown waits as checkToken does after a failure: longer with each
// failure of the host, tokens' and logins' counted together.
func (s *Server) slowDown(r *http.Request, what, why string) {
	n := s.TCP.fails.fail(remoteHost(r))
	delay := min(250*time.Millisecond<<min(n-1, 5), 8*time.Second)
	s.Log.Warn(what, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "reason", why, "failures", n)
	select {
	case <-time.After(delay):
	case <-r.Context().Done():
	}
}

// maxLoginsWaiting is how many logins of one address may wait for
// their turn; more are refused at once.
const maxLoginsWaiting = 4

// maxSessionsPerUser is how many console sessions one user may have:
// a new login past it ends the user's least recently used one.
const maxSessionsPerUser = 20

// turns lets one login of an address at a time be checked and slowed
// down: in parallel, the delay after a failure bounded nothing (60 wrong
// logins at once were all checked within 16 s, a bcrypt each).
type turns struct {
	mu sync.Mutex
	m  map[string]*turn
}

type turn struct {
	ch      chan struct{}
	waiting int
}

// take waits for host's turn and returns the function that ends it;
// false when too many wait already or r's context ends.
func (t *turns) take(ctx context.Context, host string) (func(), bool) {
	t.mu.Lock()
	if t.m == nil {
		t.m = map[string]*turn{}
	}
	e := t.m[host]
	if e == nil {
		e = &turn{ch: make(chan struct{}, 1)}
		t.m[host] = e
	}
	if e.waiting > maxLoginsWaiting {
		t.mu.Unlock()
		return nil, false
	}
	e.waiting++
	t.mu.Unlock()
	leave := func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if e.waiting--; e.waiting == 0 {
			delete(t.m, host)
		}
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; leave() }, true
	case <-ctx.Done():
		leave()
		return nil, false
	}
}

// bcryptTurn lets one password be checked at a time, whatever the number
// of addresses trying: a check costs tens of milliseconds of a Pi's core,
// and logins from many addresses at once (each bounded by turns) would
// otherwise take every core from the modems and the store.
var bcryptTurn = make(chan struct{}, 1)

// dummyHash is compared against for an unknown user, so that a wrong
// name takes as long as a wrong password: the bcrypt hash, at
// bcrypt.DefaultCost, of "not a password". It is written out, not
// computed: computed at start it cost every process, each CLI command
// included, a bcrypt (60 ms here, most of a second under the race
// detector, more on a Pi).
var dummyHash = []byte("$2a$10$FAdQ17lVTVWlmZcxxiM3vukZz0Mqs7NqeMt5BKvJI6DXSS8g4/9SO")

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8192)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("login form: %v", err))
		return
	}
	c, err := r.Cookie(loginCookie)
	form := r.PostForm.Get("csrf")
	if !sameOrigin(r) || err != nil || form == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) != 1 {
		s.Log.Warn("refused console login without its CSRF token", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"))
		writeError(w, http.StatusForbidden, errors.New("login form without its CSRF token (or from another site): load /login and try again"))
		return
	}
	done, ok := s.TCP.logins.take(r.Context(), remoteHost(r))
	if !ok {
		s.Log.Warn("refused console login", "remote", r.RemoteAddr, "reason", "too many at once from this address")
		writeError(w, http.StatusTooManyRequests, fmt.Errorf("%d logins from this address wait already: try again later", maxLoginsWaiting))
		return
	}
	defer done()
	name, password := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("password")
	var u store.User
	err = s.Router.Store.View(r.Context(), func(tx *store.Tx) (err error) {
		u, err = tx.UserByName(name)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("login: %w", err))
		return
	}
	hash := []byte(u.Hash)
	if u.Name == "" {
		hash = dummyHash
	}
	// bcrypt compares only the first 72 bytes: a longer password, which
	// no user can have, would pass as its first 72.
	select {
	case bcryptTurn <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	wrong := bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil
	<-bcryptTurn
	if wrong || u.Name == "" || len(password) > 72 {
		s.slowDown(r, "refused console login", fmt.Sprintf("wrong name or password for %q", name))
		s.loginPage(w, r, http.StatusUnauthorized, "Wrong name or password.")
		return
	}
	secret := randomText()
	var trimmed []string
	sess := store.Session{Hash: HashToken(secret), User: u.Name, CSRF: randomText()}
	if err := s.Router.Store.Update(r.Context(), func(tx *store.Tx) error {
		// Logging in is when the idle ones are cleared: no timer writes
		// to the card while nobody uses the console.
		if _, err := tx.RemoveIdleSessions(s.Router.Store.Now().Add(-s.sessionIdle())); err != nil {
			return err
		}
		if err := tx.AddSession(sess); err != nil {
			return err
		}
		// A user's oldest sessions end past maxSessionsPerUser: a
		// script that logs in over and over fills no table.
		t, err := tx.TrimSessions(u.Name, maxSessionsPerUser)
		trimmed = t
		return err
	}); err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("login: %w", err))
		return
	}
	for _, h := range trimmed {
		s.events.closeSession(h)
	}
	s.TCP.fails.clear(remoteHost(r))
	s.Log.Info("console login", "user", u.Name, "role", u.Role, "remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/login", MaxAge: -1})
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	sess, err := s.sessionFromCookie(r)
	if err == nil && !s.csrfOK(r, sess) {
		writeError(w, http.StatusForbidden, errors.New("logout without its CSRF token"))
		return
	}
	if err == nil {
		if err := s.Router.Store.Update(r.Context(), func(tx *store.Tx) error { return tx.RemoveSession(sess.Hash) }); err != nil {
			writeError(w, http.StatusServiceUnavailable, fmt.Errorf("logout: %w", err))
			return
		}
		s.events.closeSession(sess.Hash)
		s.Log.Info("console logout", "user", sess.User, "remote", r.RemoteAddr)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) sessionIdle() time.Duration {
	if s.TCP.SessionIdle > 0 {
		return s.TCP.SessionIdle
	}
	return DefaultSessionIdle
}

var errNoSession = errors.New("no session")

// sessionFromCookie is r's live session: an idle one is ended here, and
// the use of a live one recorded at most once a minute (the SD card).
func (s *Server) sessionFromCookie(r *http.Request) (store.Session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return store.Session{}, errNoSession
	}
	var sess store.Session
	st := s.Router.Store
	err = st.View(r.Context(), func(tx *store.Tx) (err error) {
		sess, err = tx.SessionByHash(HashToken(c.Value))
		return err
	})
	if err != nil {
		return store.Session{}, err
	}
	now := st.Now()
	if now.Sub(sess.LastUsed) > s.sessionIdle() {
		st.Update(r.Context(), func(tx *store.Tx) error { return tx.RemoveSession(sess.Hash) })
		return store.Session{}, fmt.Errorf("session of %s ended after %s unused: log in again: %w", sess.User, s.sessionIdle(), store.ErrNotFound)
	}
	if now.Sub(sess.LastUsed) > time.Minute {
		if err := st.Update(r.Context(), func(tx *store.Tx) error { return tx.TouchSession(sess.Hash) }); err != nil {
			s.Log.Warn("session's last use not recorded", "user", sess.User, "err", err)
		}
	}
	return sess, nil
}

// csrfOK is whether a state-changing request carries sess's CSRF token
// (header, or form field) and no other site's Origin.
func (s *Server) csrfOK(r *http.Request, sess store.Session) bool {
	got := r.Header.Get(CSRFHeader)
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
		got = r.PostFormValue("csrf")
	}
	return sameOrigin(r) && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1
}

// checkSession authenticates a request that has a session cookie and no
// bearer token: found is false when it has none (the token decides).
// It answers 401 for an unknown or idle session, 403 for a change
// without the CSRF token.
func (s *Server) checkSession(w http.ResponseWriter, r *http.Request) (sess store.Session, found, ok bool) {
	if r.Header.Get("Authorization") != "" {
		return sess, false, false
	}
	if c, err := r.Cookie(sessionCookie); err != nil || c.Value == "" {
		return sess, false, false
	}
	sess, err := s.sessionFromCookie(r)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.slowDown(r, "refused console request", "unknown or idle session")
		writeError(w, http.StatusUnauthorized, errors.New("session unknown or ended: log in again at /login"))
		return sess, true, false
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("session check: %w", err))
		return sess, true, false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !s.csrfOK(r, sess) {
		s.Log.Warn("refused console request without its CSRF token", "remote", r.RemoteAddr, "user", sess.User, "method", r.Method, "path", r.URL.Path)
		writeError(w, http.StatusForbidden, fmt.Errorf("%s %s without the session's CSRF token (%s header or csrf form field)", r.Method, r.URL.Path, CSRFHeader))
		return sess, true, false
	}
	return sess, true, true
}

// withSession is r carrying sess (callerOf).
func withSession(r *http.Request, sess store.Session) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess))
}
