package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/outpost-sms/outpost/bridge"
)

// overQuota answers a send refused by a quota: 429 with the reason and,
// when it will fit later, Retry-After (seconds) and "retry_after".
func overQuota(w http.ResponseWriter, err error) {
	r := bridge.SendReply{Error: strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": "), RetryAfter: bridge.RetryAfter(err)}
	if r.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(r.RetryAfter))
	}
	writeJSON(w, http.StatusTooManyRequests, r)
}

// quota serves GET /v1/quota?who=W&number=N (bridge.QuotaOp): 200 with
// the counts and bounds; 400 for a bad number. who defaults to the
// caller.
func (s *Server) quota(w http.ResponseWriter, r *http.Request) {
	for k := range r.URL.Query() {
		if k != "who" && k != "number" {
			writeError(w, http.StatusBadRequest, fmt.Errorf("unknown parameter %q: give who and/or number", k))
			return
		}
	}
	body, _ := json.Marshal(bridge.QuotaRequest{Who: r.URL.Query().Get("who"), Number: r.URL.Query().Get("number")})
	_, by := caller(r)
	ans, err := s.Router.QuotaOp(r.Context(), body, by)
	switch {
	case errors.Is(err, bridge.ErrInvalid):
		writeError(w, http.StatusBadRequest, errors.New(strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": ")))
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err)
	default:
		writeJSON(w, http.StatusOK, ans)
	}
}
