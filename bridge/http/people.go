package http

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/outpost-sms/outpost/bridge"
)

// people serves POST /v1/people/{op}: the people operations
// (bridge.PeopleOps: opt-outs, topics' subscribers), JSON in and out.
// 200 with the answer; 400 for a bad request; 404 for an unknown op; 503
// when the change could not be committed.
func (s *Server) people(w http.ResponseWriter, r *http.Request) {
	op := r.PathValue("op")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body: %v", err))
		return
	}
	channel := "http"
	if r.Header.Get(ChannelHeader) == "cli" {
		channel = "cli"
	}
	ans, err := s.Router.People(r.Context(), op, body, channel)
	switch {
	case errors.Is(err, bridge.ErrUnknownOp):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, bridge.ErrInvalid):
		writeError(w, http.StatusBadRequest, err)
	case err != nil:
		s.Log.Error("people operation failed", "op", op, "err", err)
		writeError(w, http.StatusServiceUnavailable, err)
	default:
		if ans.Changed {
			s.Log.Info("people: "+op, "channel", channel, "confirmation", ans.Confirmation)
		}
		writeJSON(w, http.StatusOK, ans)
	}
}
