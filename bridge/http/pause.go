package http

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/outpost-sms/outpost/bridge"
)

// pauseRoutes serves POST /v1/pause/{name} and POST /v1/resume/{name}
// (bridge.Router.Pause): 200 {"name", "kind", "paused"}, 404 for a name
// that is neither a modem nor a connector. No body: who asks is the
// caller (the CLI's user, the token).
func (s *Server) pauseRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/pause/{name}", s.pauseOp(s.Router.Pause))
	mux.HandleFunc("POST /v1/resume/{name}", s.pauseOp(s.Router.Resume))
}

func (s *Server) pauseOp(op func(context.Context, string) (bridge.PauseAnswer, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ans, err := op(r.Context(), r.PathValue("name"))
		switch {
		case errors.Is(err, bridge.ErrUnknownName):
			writeError(w, http.StatusNotFound, err)
		case err != nil:
			s.Log.Error("pause or resume not stored", "name", r.PathValue("name"), "err", err)
			writeError(w, http.StatusServiceUnavailable, err)
		default:
			writeJSON(w, http.StatusOK, ans)
		}
	}
}

// withPaused is v (a modem's or a link's status) with "paused": true
// beside its own fields.
func withPaused(v any) any {
	b, err := json.Marshal(v)
	var m map[string]any
	if err != nil || json.Unmarshal(b, &m) != nil || m == nil {
		return map[string]any{"paused": true}
	}
	m["paused"] = true
	return m
}
