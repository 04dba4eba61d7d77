package http

import (
	"errors"
	"net/http"
)

// modems answers GET /v1/modems: each modem with its identity, signal
// over the last day, today's traffic and resets (outpost modems).
func (s *Server) modems(w http.ResponseWriter, r *http.Request) {
	if s.ModemReport == nil {
		writeError(w, http.StatusNotFound, errors.New("no modem report in this daemon"))
		return
	}
	body, err := s.ModemReport(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}
