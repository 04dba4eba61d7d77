package http

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/outpost-sms/outpost/bridge"
)

// statsRoutes serves the statistics (bridge.StatsOps):
// GET /v1/stats?number=N&since=7d&modem=M.
func (s *Server) statsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/stats", s.stats)
}

// stats serves GET /v1/stats: 200 with bridge.Stats; 400 for an unknown
// parameter or a bad value (a bad number or since, an unknown modem).
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k, v := range q {
		switch k {
		case "number", "since", "modem":
			if len(v) > 1 {
				writeError(w, http.StatusBadRequest, fmt.Errorf("parameter %q given %d times: give it once", k, len(v)))
				return
			}
		default:
			writeError(w, http.StatusBadRequest, fmt.Errorf("unknown parameter %q (number, since, modem)", k))
			return
		}
	}
	st, err := s.Router.StatsOf(r.Context(), bridge.StatsRequest{Number: q.Get("number"), Since: q.Get("since"), Modem: q.Get("modem")})
	switch {
	case errors.Is(err, bridge.ErrInvalid):
		writeError(w, http.StatusBadRequest, err)
	case err != nil:
		s.Log.Error("stats failed", "err", err)
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, st)
	}
}
