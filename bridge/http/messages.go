package http

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// messageRoutes adds the message management routes: listing with
// filters and a cursor, marks, delete.
func (s *Server) messageRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/messages", s.listMessages)
	mux.HandleFunc("POST /v1/messages/{id}/mark", s.markMessage)
	mux.HandleFunc("DELETE /v1/messages/{id}", s.deleteMessage)
}

// listMessages serves GET /v1/messages?direction=&state=&number=&tag=
// &since=&limit=&cursor=: 200 with {"messages": […], "next": cursor}
// (no next on the last page); 400 for a bad parameter.
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "direction", "state", "number", "tag", "since", "limit", "cursor":
		default:
			writeError(w, http.StatusBadRequest, fmt.Errorf("unknown parameter %q (direction, state, number, tag, since, limit, cursor)", k))
			return
		}
	}
	f := store.Filter{Direction: q.Get("direction"), State: q.Get("state"), Number: q.Get("number"), Tag: q.Get("tag"),
		Cursor: q.Get("cursor"), Limit: 50}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit must be a number from 1 to 1000, not %q", l))
			return
		}
		f.Limit = n
	}
	if v := q.Get("since"); v != "" {
		t, err := bridge.ParseSince(v, s.Router.Store.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		f.Since = t
	}
	p, err := s.Router.ListMessages(r.Context(), f)
	switch {
	case errors.Is(err, bridge.ErrInvalid):
		writeError(w, http.StatusBadRequest, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, p)
	}
}

// markBody is the body of POST /v1/messages/{id}/mark.
type markBody struct {
	store.Mark
	By string `json:"by"`
}

// markMessage serves POST /v1/messages/{id}/mark with {"read": true,
// "handled": true, "tag": "T", "by": "who"}: 200 with the message; 400
// for a mark that does not apply; 404 for an unknown id.
func (s *Server) markMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var b markBody
	if !decodeBody(w, r, 4096, &b, `{"read": true, "handled": true, "tag": "T", "by": "who"}`) {
		return
	}
	v, err := s.Router.MarkMessage(r.Context(), id, b.Mark, claimed(r, b.By))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Errorf("no message with id %q", id))
	case errors.Is(err, bridge.ErrInvalid):
		writeError(w, http.StatusBadRequest, err)
	case err != nil:
		s.Log.Error("message not marked", "msg_id", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, err)
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

// deleteMessage serves DELETE /v1/messages/{id}: 200; 404 for an
// unknown id; 409 while one of its deliveries is being sent.
func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := s.Router.DeleteMessage(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Errorf("no message with id %q", id))
	case errors.Is(err, store.ErrWrongState):
		writeError(w, http.StatusConflict, err)
	case err != nil:
		s.Log.Error("message not deleted", "msg_id", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, err)
	default:
		s.Log.Info("message deleted", "msg_id", id, "channel", r.Header.Get(ChannelHeader))
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "ok": true})
	}
}
