package http

import (
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
