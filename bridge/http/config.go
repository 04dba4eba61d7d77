package http

import (
	"errors"
	"net/http"
)

// configRoutes serve GET /v1/config (admin only on TCP): the config the
// daemon runs, defaults filled in, its secrets masked (ConfigView).
func (s *Server) configRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/config", s.config)
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	if s.ConfigView == nil {
		writeError(w, http.StatusNotFound, errors.New("no config view here"))
		return
	}
	v, err := s.ConfigView()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
