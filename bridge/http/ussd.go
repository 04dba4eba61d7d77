package http

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/outpost-sms/outpost/bridge"
)

// ussdBody is the body of POST /v1/modems/{id}/ussd.
type ussdBody struct {
	Code    string   `json:"code"`
	Answers []string `json:"answers,omitempty"`
	By      string   `json:"by,omitempty"`
}

// ussd serves POST /v1/modems/{id}/ussd {"code": "*100#", "answers":
// ["1"]} (bridge.USSDOp): 200 with every screen; 502 with the screens so
// far and the error when the network refused or ended the session; 400
// for a bad request or an unknown modem; 503 when the modem cannot talk
// now.
func (s *Server) ussd(w http.ResponseWriter, r *http.Request) {
	var b ussdBody
	if !decodeBody(w, r, 16<<10, &b, `{"code": "*100#", "answers": ["1", …]}`) {
		return
	}
	body, _ := json.Marshal(struct {
		bridge.USSDRequest
		By string `json:"by,omitempty"`
	}{bridge.USSDRequest{Modem: r.PathValue("id"), Code: b.Code, Answers: b.Answers}, b.By})
	ans, err := s.Router.USSDOp(r.Context(), body)
	switch {
	case errors.Is(err, bridge.ErrInvalid):
		writeError(w, http.StatusBadRequest, errors.New(strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": ")))
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err)
	case !ans.OK:
		writeJSON(w, http.StatusBadGateway, ans)
	default:
		writeJSON(w, http.StatusOK, ans)
	}
}
