package http

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/outpost-sms/outpost/bridge"
)

// overQuota answers a send refused by a quota: 429 with the reason and,
// when it will fit later, Retry-After (seconds).
func overQuota(w http.ResponseWriter, err error) {
	if wait := bridge.QuotaWait(err); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	}
	writeError(w, http.StatusTooManyRequests, errors.New(strings.TrimPrefix(err.Error(), bridge.ErrInvalid.Error()+": ")))
}
