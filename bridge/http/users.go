package http

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/outpost-sms/outpost/store"
	"golang.org/x/crypto/bcrypt"
)

// userRoutes serve the console's users (admin only on TCP; the CLI's
// outpost user): GET /v1/users, POST /v1/users {"name", "role",
// "password"}, DELETE /v1/users/{name}, POST /v1/users/{name}/password
// {"password"}; and the live events (events.go).
func (s *Server) userRoutes(ctx context.Context, mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/users", s.listUsers)
	mux.HandleFunc("POST /v1/users", s.addUser)
	mux.HandleFunc("DELETE /v1/users/{name}", s.removeUser)
	mux.HandleFunc("POST /v1/users/{name}/password", s.setPassword)
	s.events.start(ctx, s.Router)
	mux.HandleFunc("GET /v1/events", s.serveEvents)
}

// UserRequest is the body of POST /v1/users.
type UserRequest struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

// PasswordRequest is the body of POST /v1/users/{name}/password.
type PasswordRequest struct {
	Password string `json:"password"`
}

// MinPassword is the shortest password a user may have.
const MinPassword = 8

// hashPassword is password's bcrypt hash, or why it cannot be one.
func hashPassword(password string) (string, error) {
	switch {
	case len(password) < MinPassword:
		return "", fmt.Errorf("password: at least %d characters", MinPassword)
	case len(password) > 72:
		return "", errors.New("password: at most 72 bytes (bcrypt reads no more)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

func (s *Server) addUser(w http.ResponseWriter, r *http.Request) {
	var b UserRequest
	if !decodeBody(w, r, 4096, &b, `{"name": "…", "role": "user|admin", "password": "…"}`) {
		return
	}
	if !validNameRole(w, "user", b.Name, b.Role) {
		return
	}
	hash, err := hashPassword(b.Password)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	u := store.User{Name: b.Name, Role: b.Role, Hash: hash}
	by, ok := s.auditedChange(w, r, "user/add", u.Name, "role "+u.Role, func(tx *store.Tx) error { return tx.AddUser(u) })
	if !ok {
		return
	}
	s.Log.Info("console user added", "user", u.Name, "role", u.Role, "by", by)
	writeJSON(w, http.StatusCreated, map[string]any{"ok": true, "name": u.Name, "role": u.Role})
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	listOf(s, w, r, (*store.Tx).Users)
}

func (s *Server) removeUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	by, ok := s.auditedChange(w, r, "user/rm", name, "", func(tx *store.Tx) error { return tx.RemoveUser(name) })
	if !ok {
		return
	}
	s.events.closeUser(name)
	s.Log.Info("console user removed", "user", name, "by", by)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "removed": name})
}

func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var b PasswordRequest
	if !decodeBody(w, r, 4096, &b, `{"password": "…"}`) {
		return
	}
	hash, err := hashPassword(b.Password)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	by, ok := s.auditedChange(w, r, "user/passwd", name, "", func(tx *store.Tx) error { return tx.SetUserPassword(name, hash) })
	if !ok {
		return
	}
	s.events.closeUser(name)
	s.Log.Info("console user's password changed; its sessions ended", "user", name, "by", by)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "name": name})
}
