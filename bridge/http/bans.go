package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// ByHeader names who asks, for the audit log: the outpost command sends
// "user NAME" (or its --by). A request without it is "the HTTP API".
const ByHeader = "X-Outpost-By"

// caller is the channel (cli or http) and who asks of a request.
func caller(r *http.Request) (channel, by string) {
	channel = "http"
	if r.Header.Get(ChannelHeader) == "cli" {
		channel = "cli"
	}
	return channel, who(r.Header.Get(ByHeader))
}

// banRoutes serves the bans and the audit log (bridge.BanOps):
// GET /v1/bans, POST /v1/bans {"addr", "reason"?, "by"?},
// DELETE /v1/bans/{addr} ({"by"?}), GET /v1/audit?since=1h&who=W.
func (s *Server) banRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/bans", s.banOp("ban-list"))
	mux.HandleFunc("POST /v1/bans", s.banOp("ban"))
	mux.HandleFunc("DELETE /v1/bans/{addr}", s.banOp("unban"))
	mux.HandleFunc("GET /v1/audit", s.banOp("audit"))
}

// banOp serves one ban operation: 200 with the answer; 400 with the
// reason for a bad body or address; 503 when it could not be committed.
func (s *Server) banOp(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body: %v", err))
			return
		}
		switch op {
		case "unban", "audit":
			var req bridge.BanRequest
			if len(strings.TrimSpace(string(body))) > 0 {
				if err := json.Unmarshal(body, &req); err != nil {
					writeError(w, http.StatusBadRequest, fmt.Errorf(`request body: want {"by": "who asks"} or nothing: %v`, err))
					return
				}
			}
			if op == "unban" {
				req.Addr = r.PathValue("addr")
			} else {
				req.Since, req.Who = r.URL.Query().Get("since"), r.URL.Query().Get("who")
			}
			body, _ = json.Marshal(req)
		}
		channel, by := caller(r)
		ans, err := s.Router.Bans(r.Context(), op, body, channel, by)
		switch {
		case errors.Is(err, bridge.ErrInvalid):
			writeError(w, http.StatusBadRequest, err)
		case err != nil:
			s.Log.Error(op+" failed", "err", err)
			writeError(w, http.StatusServiceUnavailable, err)
		default:
			writeJSON(w, http.StatusOK, ans)
		}
	}
}

// withCaller gives every request's context its channel and who asks
// (bridge.WithCaller), for the audit log of the operations that take no
// "by" of their own.
func withCaller(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		channel, by := caller(r)
		next.ServeHTTP(w, r.WithContext(bridge.WithCaller(r.Context(), channel, by)))
	})
}

// hubRequeueAudit is the audit entry of a requeue of set-aside messages.
func hubRequeueAudit(r *http.Request, by string, moved []store.HubRequeued) store.AuditEntry {
	channel, _ := caller(r)
	ids := make([]string, 0, len(moved))
	for _, m := range moved {
		ids = append(ids, fmt.Sprint(m.ID))
	}
	target := strings.Join(ids, ",")
	if len(target) > 500 {
		target = target[:500] + "…"
	}
	return store.AuditEntry{Who: by, Channel: channel, Op: "hub-requeue", Target: target, Detail: fmt.Sprintf("%d messages", len(moved))}
}
