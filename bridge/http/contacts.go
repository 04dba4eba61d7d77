package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// contactRoutes serves contacts and groups (bridge/contacts.go):
//
//	GET /v1/contacts, POST /v1/contacts (201), GET|PATCH|DELETE /v1/contacts/{ref}
//	(ref: the contact's id or name), POST /v1/contacts/import (CSV body),
//	GET /v1/contacts/export (CSV), GET /v1/groups, POST /v1/groups (201,
//	{"name"}), GET|DELETE /v1/groups/{name}, POST /v1/groups/{name}/members
//	({"add": [ref…], "rm": [ref…]}).
//
// Bad input is 400 naming the field, an unknown contact or group 404, a
// name or address another contact has 409.
func (s *Server) contactRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/contacts", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		for k := range q {
			if k != "limit" && k != "cursor" {
				writeError(w, http.StatusBadRequest, fmt.Errorf("unknown parameter %q (limit, cursor)", k))
				return
			}
		}
		limit := 0
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 1 || n > bridge.MaxContactLimit {
				writeError(w, http.StatusBadRequest, fmt.Errorf("limit must be a number from 1 to %d, not %q", bridge.MaxContactLimit, l))
				return
			}
			limit = n
		}
		p, err := s.Router.ContactsPage(r.Context(), q.Get("cursor"), limit)
		s.answer(w, http.StatusOK, p, err)
	})
	mux.HandleFunc("POST /v1/contacts", func(w http.ResponseWriter, r *http.Request) {
		var in bridge.ContactInput
		ctx, ok := s.decode(w, r, &in)
		if !ok {
			return
		}
		res, err := s.Router.AddContact(ctx, in)
		s.answer(w, http.StatusCreated, res, err)
	})
	mux.HandleFunc("GET /v1/contacts/{ref}", func(w http.ResponseWriter, r *http.Request) {
		c, err := s.Router.ShowContact(r.Context(), r.PathValue("ref"))
		s.answer(w, http.StatusOK, c, err)
	})
	mux.HandleFunc("PATCH /v1/contacts/{ref}", func(w http.ResponseWriter, r *http.Request) {
		var in bridge.ContactInput
		ctx, ok := s.decode(w, r, &in)
		if !ok {
			return
		}
		res, err := s.Router.EditContact(ctx, r.PathValue("ref"), in)
		s.answer(w, http.StatusOK, res, err)
	})
	mux.HandleFunc("DELETE /v1/contacts/{ref}", func(w http.ResponseWriter, r *http.Request) {
		var none struct{}
		ctx, ok := s.decode(w, r, &none) // an optional {"by"}
		if !ok {
			return
		}
		c, err := s.Router.RemoveContact(ctx, r.PathValue("ref"))
		s.answer(w, http.StatusOK, map[string]any{"ok": true, "removed": c}, err)
	})
	mux.HandleFunc("POST /v1/contacts/import", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxImport))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the file: %v (at most %d bytes)", err, MaxImport))
			return
		}
		n, err := s.Router.ImportContacts(r.Context(), bytes.NewReader(body))
		s.answer(w, http.StatusOK, map[string]any{"ok": true, "imported": n}, err)
	})
	mux.HandleFunc("GET /v1/contacts/export", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		if err := s.Router.ExportContacts(r.Context(), &b); err != nil {
			s.answer(w, 0, nil, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Write(b.Bytes())
	})
	mux.HandleFunc("GET /v1/groups", func(w http.ResponseWriter, r *http.Request) {
		gs, err := s.Router.ListGroups(r.Context())
		s.answer(w, http.StatusOK, gs, err)
	})
	mux.HandleFunc("POST /v1/groups", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name string `json:"name"`
		}
		ctx, ok := s.decode(w, r, &in)
		if !ok {
			return
		}
		g, err := s.Router.AddGroup(ctx, in.Name)
		s.answer(w, http.StatusCreated, g, err)
	})
	mux.HandleFunc("GET /v1/groups/{name}", func(w http.ResponseWriter, r *http.Request) {
		res, err := s.Router.GroupMembers(r.Context(), r.PathValue("name"), nil, nil)
		s.answer(w, http.StatusOK, res.Group, err)
	})
	mux.HandleFunc("DELETE /v1/groups/{name}", func(w http.ResponseWriter, r *http.Request) {
		var none struct{}
		ctx, ok := s.decode(w, r, &none) // an optional {"by"}
		if !ok {
			return
		}
		name, err := s.Router.RemoveGroup(ctx, r.PathValue("name"))
		s.answer(w, http.StatusOK, map[string]any{"ok": true, "removed": name}, err)
	})
	mux.HandleFunc("POST /v1/groups/{name}/members", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Add []string `json:"add"`
			Rm  []string `json:"rm"`
		}
		ctx, ok := s.decode(w, r, &in)
		if !ok {
			return
		}
		res, err := s.Router.GroupMembers(ctx, r.PathValue("name"), in.Add, in.Rm)
		s.answer(w, http.StatusOK, res, err)
	})
}

// MaxImport bounds a contacts CSV file.
const MaxImport = 8 << 20

// decode reads a request's JSON body into v, or answers 400 naming the
// field and returns false. The body may also say who asks ("by", as
// every other endpoint takes it): the context returned carries it.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) (context.Context, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body: %v", err))
		return nil, false
	}
	by, err := bridge.DecodeAdminBy(body, v)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return nil, false
	}
	return bridge.WithBy(r.Context(), by), true
}

// answer writes v with code, or err with its status: 400 bad input, 404
// unknown, 409 taken, 503 the store failed.
func (s *Server) answer(w http.ResponseWriter, code int, v any, err error) {
	switch {
	case errors.Is(err, bridge.ErrInvalid):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, store.ErrExists):
		writeError(w, http.StatusConflict, err)
	case err != nil:
		s.Log.Error("contacts request failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, err)
	default:
		writeJSON(w, code, v)
	}
}
