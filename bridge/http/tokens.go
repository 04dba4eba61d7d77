package http

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/outpost-sms/outpost/store"
)

// tokenRoutes serve the API tokens (admin only on TCP): GET /v1/tokens,
// POST /v1/tokens {"name", "role", "expires"?: "720h"} (the answer has
// the token, the only time it is shown), DELETE /v1/tokens/{name}.
func (s *Server) tokenRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/tokens", s.listTokens)
	mux.HandleFunc("POST /v1/tokens", s.addToken)
	mux.HandleFunc("DELETE /v1/tokens/{name}", s.removeToken)
}

var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// TokenRequest is the body of POST /v1/tokens.
type TokenRequest struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Expires string `json:"expires,omitempty"`
}

// NewToken is the answer of POST /v1/tokens.
type NewToken struct {
	store.APIToken
	Token string `json:"token"`
}

func (s *Server) addToken(w http.ResponseWriter, r *http.Request) {
	var b TokenRequest
	if !decodeBody(w, r, 4096, &b, `{"name": "…", "role": "user|admin", "expires": "720h"}`) {
		return
	}
	if !validNameRole(w, "token", b.Name, b.Role) {
		return
	}
	t := store.APIToken{Name: b.Name, Role: b.Role}
	if b.Expires != "" {
		d, err := time.ParseDuration(b.Expires)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("expires %q: want a positive duration such as 720h", b.Expires))
			return
		}
		t.ExpiresAt = s.Router.Store.Now().Add(d)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	secret := "opt_" + base64.RawURLEncoding.EncodeToString(raw)
	t.Hash = HashToken(secret)
	detail := "role " + t.Role
	if !t.ExpiresAt.IsZero() {
		detail += ", expires " + t.ExpiresAt.Format(time.RFC3339)
	}
	by, ok := s.auditedChange(w, r, "token/add", t.Name, detail, func(tx *store.Tx) error { return tx.AddToken(t) })
	if !ok {
		return
	}
	t.CreatedAt = s.Router.Store.Now().UTC().Truncate(time.Millisecond)
	s.Log.Info("API token added", "token", t.Name, "role", t.Role, "by", by)
	writeJSON(w, http.StatusCreated, NewToken{APIToken: t, Token: secret})
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	listOf(s, w, r, (*store.Tx).Tokens)
}

func (s *Server) removeToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	by, ok := s.auditedChange(w, r, "token/rm", name, "", func(tx *store.Tx) error { return tx.RemoveToken(name) })
	if !ok {
		return
	}
	s.events.closeToken(name)
	s.Log.Info("API token removed", "token", name, "by", by)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "removed": name})
}

// validNameRole answers 400 unless name is a valid token or user name
// and role a role.
func validNameRole(w http.ResponseWriter, what, name, role string) bool {
	if !tokenName.MatchString(name) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%s name %q: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", what, name))
		return false
	}
	if role != RoleUser && role != RoleAdmin {
		writeError(w, http.StatusBadRequest, fmt.Errorf("role %q: want user or admin", role))
		return false
	}
	return true
}

// auditedChange runs change and its audit entry (op on target, by the
// caller) in one transaction. On failure it answers: 409 for a name
// taken, 404 for one not found, 503 when the store failed; it returns
// who asked and whether the change was committed.
func (s *Server) auditedChange(w http.ResponseWriter, r *http.Request, op, target, detail string, change func(*store.Tx) error) (string, bool) {
	channel, by := caller(r)
	err := s.Router.Store.Update(r.Context(), func(tx *store.Tx) error {
		if err := change(tx); err != nil {
			return err
		}
		return s.Router.Audit(tx, store.AuditEntry{Who: by, Channel: channel, Op: op, Target: target, Detail: detail})
	})
	switch {
	case errors.Is(err, store.ErrDuplicate):
		writeError(w, http.StatusConflict, err)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err)
	}
	return by, err == nil
}

// listOf answers with the list read reads, in a read transaction.
func listOf[T any](s *Server, w http.ResponseWriter, r *http.Request, read func(*store.Tx) ([]T, error)) {
	var list []T
	if err := s.Router.Store.View(r.Context(), func(tx *store.Tx) (err error) {
		list, err = read(tx)
		return err
	}); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}
