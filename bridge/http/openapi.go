package http

import (
	_ "embed"
	"net/http"
)

// openAPI describes every route of the mux (OpenAPI 3.1). A route added
// to the mux must be added here too: TestOpenAPICoversTheMux names the
// ones missing.
//
//go:embed openapi.json
var openAPI []byte

// openapi serves GET /v1/openapi.json: no token needed on TCP.
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
