// Package http is the HTTP API on a Unix socket (in the data folder) that
// the outpost CLI uses: POST /v1/messages queues an SMS (201 only after
// commit), GET /v1/messages/{id}, POST /v1/messages/{id}/retry and
// /cancel, GET /v1/inbox, GET /v1/status, GET /v1/hub/set-aside and
// POST /v1/hub/set-aside/requeue.
// Errors are JSON {"error": "..."} with a 4xx status for bad requests.
// The same routes are served on TCP ([http] listen) with tokens and
// roles, and /healthz and /readyz: see tcp.go.
package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// ChannelHeader names the channel of a request: "cli" from the outpost
// command; anything else is "http".
const ChannelHeader = "X-Outpost-Channel"

// Server serves the API on a Unix socket.
type Server struct {
	Socket    string
	GatewayID string
	Version   string
	Router    *bridge.Router
	Log       *slog.Logger
	// Pruner is the retention pruner whose counts status shows (nil:
	// none).
	Pruner *bridge.Pruner
	// CanSend says whether a modem's status (Router.Modems) is one that
	// can send now, for /readyz (nil: its state is "ready").
	CanSend func(status any) bool
	// ConfigView answers GET /v1/config: the running config, its secrets
	// masked (nil: not found).
	ConfigView func() (any, error)
	// ModemReport answers GET /v1/modems (nil: not found).
	ModemReport func(context.Context) (any, error)
	// TCP is the API on a TCP address with tokens (nil: none).
	TCP     *TCP
	events  events // events.go
	started time.Time
	ln      net.Listener
	// metrics serves GET /metrics (metrics.go).
	metrics     *metrics
	metricsOnce sync.Once
}

// StatusBody is the answer of GET /v1/status.
type StatusBody struct {
	GatewayID string                    `json:"gateway_id"`
	Version   string                    `json:"version"`
	StartedAt time.Time                 `json:"started_at"`
	Modems    map[string]any            `json:"modems"`
	Queues    map[string]map[string]int `json:"queues"`
	// Reassembly is the long messages waiting for missing parts.
	Reassembly store.Reassembly `json:"reassembly"`
	// Links are the links to elsewhere (the hub) and their state.
	Links map[string]any `json:"links"`
	// HubQueue is what waits for the hub, and what its limits dropped.
	HubQueue store.HubStats `json:"hub_queue"`
	// Store is the database's size on disk and its last WAL checkpoint.
	Store store.Files `json:"store"`
	// Disk is the space left where the data folder is.
	Disk Disk `json:"disk"`
	// Retention is what the retention pruner deleted since start.
	Retention *bridge.PruneStats `json:"retention,omitempty"`
	// Routing is each modem's part in sending: limits, load, rest.
	Routing any `json:"routing,omitempty"`
	// Connectors are the connectors' names (sms, mqtt, hub, …).
	Connectors []string `json:"connectors"`
	// Paused are the modems and connectors an operator paused, sorted.
	Paused []string `json:"paused"`
}

// Listen binds the socket. A stale socket file from a killed daemon is
// replaced; a live one (another daemon) is an error. Run calls it when it
// was not called before.
func (s *Server) Listen() error {
	s.initMetrics() // before the router runs: nothing is missed
	if c, err := net.Dial("unix", s.Socket); err == nil {
		c.Close()
		return fmt.Errorf("another daemon is listening on %s", s.Socket)
	}
	os.Remove(s.Socket)
	ln, err := net.Listen("unix", s.Socket)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.Socket, err)
	}
	os.Chmod(s.Socket, 0o660)
	s.ln = ln
	return nil
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	s.started = time.Now()
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	ln := s.ln
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/messages", s.send)
	mux.HandleFunc("GET /v1/messages/{id}", s.show)
	mux.HandleFunc("POST /v1/messages/{id}/retry", s.manage(s.Router.Retry, "retried"))
	mux.HandleFunc("POST /v1/messages/{id}/cancel", s.manage(s.Router.Cancel, "cancelled"))
	mux.HandleFunc("GET /v1/inbox", s.inbox)
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("GET /v1/modems", s.modems)
	mux.HandleFunc("GET /v1/hub/set-aside", s.setAside)
	mux.HandleFunc("POST /v1/hub/set-aside/requeue", s.requeue)
	mux.HandleFunc("POST /v1/people/{op}", s.people)
	mux.HandleFunc("GET /v1/quota", s.quota)
	mux.HandleFunc("POST /v1/modems/{id}/ussd", s.ussd)
	s.contactRoutes(mux)                      // contacts.go: /v1/contacts…, /v1/groups…
	s.banRoutes(mux)                          // bans.go: /v1/bans…, /v1/audit
	s.messageRoutes(mux)                      // messages.go: GET /v1/messages, mark, DELETE
	s.statsRoutes(mux)                        // stats.go: GET /v1/stats
	s.tokenRoutes(mux)                        // tokens.go: /v1/tokens…
	s.configRoutes(mux)                       // config.go: GET /v1/config
	s.userRoutes(ctx, mux)                    // users.go: /v1/users…, /v1/events
	mux.HandleFunc("GET /healthz", s.healthz) // tcp.go
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /metrics", s.serveMetrics) // metrics.go
	// pause.go: /v1/pause/{name}, /v1/resume/{name}; openapi.go
	s.pauseRoutes(mux)
	mux.HandleFunc("GET /v1/openapi.json", s.openapi)
	srv := &http.Server{Handler: recoverPanics(s.Log, withCaller(mux)), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	var tcp *http.Server
	if s.TCP != nil {
		if s.TCP.ln == nil {
			if err := s.ListenTCP(); err != nil {
				srv.Close()
				return err
			}
		}
		// A remote client's TLS handshake errors go to the daemon's log,
		// not to stderr unformatted.
		tcp = &http.Server{Handler: recoverPanics(s.Log, s.tcpHandler(mux)), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: tcpReadTimeout, IdleTimeout: tcpIdleTimeout, // tcp.go
			ErrorLog: slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn)}
		go func() { errc <- tcp.Serve(s.TCP.ln) }()
	}
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if tcp != nil {
			tcp.Shutdown(sctx)
		}
		srv.Shutdown(sctx)
		os.Remove(s.Socket)
		return nil
	case err := <-errc:
		return err
	}
}

// recoverPanics answers a request whose handler panicked with a JSON 500
// naming what happened (the CLI prints it; before, the connection was
// cut and the CLI said "no daemon is running"), and logs the stack. The
// daemon goes on.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil || p == http.ErrAbortHandler {
				if p != nil {
					panic(p)
				}
				return
			}
			log.Error("HTTP request panicked; answered 500", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, fmt.Errorf("internal error in %s %s (%v); the daemon's log has the details", r.Method, r.URL.Path, p))
		}()
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body: %v", err))
		return
	}
	// The outpost command says it is the one asking: its sends are
	// stored as coming from the cli channel.
	channel := "http"
	if r.Header.Get(ChannelHeader) == "cli" {
		channel = "cli"
	}
	req, _, err := bridge.ParseSend(body, channel)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	_, req.By = caller(r)
	if id, _, ok := callerOf(r); ok {
		// The token or the console's user is who sends, for its quota
		// ([[quota.source]] who = "token:NAME") and the audit, whatever
		// the request says.
		req.By = id
		req.From = id // show lets a user token or session read only these
	}
	var skipped []string
	req.Notes = &skipped
	id, err := s.Router.Submit(r.Context(), req)
	switch {
	case errors.Is(err, bridge.ErrQuota):
		overQuota(w, err) // quota.go
	case errors.Is(err, bridge.ErrConflict):
		writeError(w, http.StatusConflict, err)
	case errors.Is(err, bridge.ErrInvalid):
		writeError(w, http.StatusBadRequest, err)
	case err != nil:
		s.Log.Error("send request not stored", "err", err)
		writeError(w, http.StatusServiceUnavailable, err)
	default:
		// A group listing a number twice sends it one SMS: say so.
		writeJSON(w, http.StatusCreated, bridge.SendReply{ID: id, OK: true, Notes: append(s.Router.GroupNotes(req.To, req.Channels...), skipped...)})
	}
}

func (s *Server) show(w http.ResponseWriter, r *http.Request) {
	v, err := s.Router.Message(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Errorf("no message with id %q", r.PathValue("id")))
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	case !ownMessage(r, v.FromAddr):
		writeError(w, http.StatusForbidden, fmt.Errorf("message %s was not sent with this token: a user token reads only its own sends", r.PathValue("id")))
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

// ownMessage is whether the request may read a message sent from
// fromAddr: always on the socket and with an admin token.
func ownMessage(r *http.Request, fromAddr string) bool {
	id, role, ok := callerOf(r)
	return !ok || role == RoleAdmin || fromAddr == id
}

// manageBody is the optional body of retry and cancel: who asks, for the
// history.
type manageBody struct {
	By string `json:"by"`
}

// manage serves retry and cancel: 200 with the destinations changed, the
// others counted by state and a summary; 404 for an unknown id, 409 when
// nothing could be changed (the states counted).
func (s *Server) manage(op func(ctx context.Context, id, by string) (bridge.Managed, error), done string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body: %v", err))
			return
		}
		var b manageBody
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &b); err != nil {
				writeError(w, http.StatusBadRequest, fmt.Errorf("request body: want {\"by\": \"who asks\"} or nothing: %v", err))
				return
			}
		}
		by := claimed(r, b.By) // tcp.go
		res, err := op(r.Context(), id, by)
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeError(w, http.StatusNotFound, fmt.Errorf("no message with id %q", id))
		case errors.Is(err, store.ErrWrongState):
			writeError(w, http.StatusConflict, err)
		case err != nil:
			s.Log.Error("message not "+done, "msg_id", id, "err", err)
			writeError(w, http.StatusServiceUnavailable, err)
		default:
			if res.Deliveries == nil {
				res.Deliveries = []store.Delivery{}
			}
			writeJSON(w, http.StatusOK, map[string]any{"id": id, "ok": true, "deliveries": res.Deliveries, "unchanged": res.Unchanged,
				"summary": res.Summary})
		}
	}
}

func (s *Server) inbox(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit must be a number from 1 to 10000, not %q", l))
			return
		}
		limit = n
	}
	ms, err := s.Router.Inbox(r.Context(), limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if ms == nil {
		ms = []bridge.MessageView{}
	}
	writeJSON(w, http.StatusOK, ms)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	body, err := s.Status(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// Status is the daemon's status, as GET /v1/status answers it.
func (s *Server) Status(ctx context.Context) (StatusBody, error) {
	q, err := s.Router.QueueDepths(ctx)
	if err != nil {
		return StatusBody{}, err
	}
	ra, err := s.Router.Reassembly(ctx)
	if err != nil {
		return StatusBody{}, err
	}
	body := StatusBody{GatewayID: s.GatewayID, Version: s.Version, StartedAt: s.started, Modems: s.Router.Modems(), Queues: q, Reassembly: ra, Links: s.Router.Links(),
		Store: s.Router.Store.Files(), Disk: diskOf(filepath.Dir(s.Socket)), Routing: s.Router.RoutingStatus(), Connectors: s.Router.ConnectorNames()}
	body.Paused = s.Router.PausedNames()
	for _, name := range body.Paused {
		if v, ok := body.Modems[name]; ok {
			body.Modems[name] = withPaused(v) // pause.go
		}
		if v, ok := body.Links[name]; ok {
			body.Links[name] = withPaused(v)
		}
	}
	if s.Pruner != nil {
		st := s.Pruner.Stats()
		body.Retention = &st
	}
	err = s.Router.Store.View(ctx, func(tx *store.Tx) (err error) {
		if body.HubQueue, err = tx.HubQueueStats(); err != nil || body.HubQueue.SetAside == 0 {
			return err
		}
		body.HubQueue.Latest, err = tx.HubSetAsideLatest(5)
		return err
	})
	return body, err
}

// Disk is the space of the file system the data folder is on.
type Disk struct {
	FreeBytes  uint64 `json:"free_bytes"`
	TotalBytes uint64 `json:"total_bytes"`
}

// diskOf is the space of the file system dir is on (zero when unknown).
func diskOf(dir string) Disk {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return Disk{}
	}
	return Disk{FreeBytes: st.Bavail * uint64(st.Bsize), TotalBytes: st.Blocks * uint64(st.Bsize)}
}

// setAside lists the messages set aside from the hub queue (the hub kept
// refusing them), newest first.
func (s *Server) setAside(w http.ResponseWriter, r *http.Request) {
	var list []store.HubSetAside
	if err := s.Router.Store.View(r.Context(), func(tx *store.Tx) (err error) {
		list, err = tx.HubSetAsideLatest(store.MaxSetAside)
		return err
	}); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if list == nil {
		list = []store.HubSetAside{}
	}
	writeJSON(w, http.StatusOK, list)
}

// requeueBody is the body of POST /v1/hub/set-aside/requeue: ids, or all.
type requeueBody struct {
	IDs []int64 `json:"ids"`
	All bool    `json:"all"`
	By  string  `json:"by"`
}

// requeue puts set-aside messages back at the end of the hub queue: 200
// with what moved (old id, new queue id), 404 when an id is not set
// aside (nothing moves), 400 for a bad body.
func (s *Server) requeue(w http.ResponseWriter, r *http.Request) {
	var b requeueBody
	if !decodeBody(w, r, 64<<10, &b, `{"ids": [id, …]} or {"all": true}`) {
		return
	}
	switch {
	case b.All && len(b.IDs) > 0:
		writeError(w, http.StatusBadRequest, errors.New(`"ids" and "all" exclude each other`))
		return
	case !b.All && len(b.IDs) == 0:
		writeError(w, http.StatusBadRequest, errors.New(`nothing to requeue: give "ids" (the ids of outpost hub set-aside) or "all": true`))
		return
	case len(b.IDs) > store.MaxSetAside:
		writeError(w, http.StatusBadRequest, fmt.Errorf(`%d ids: at most %d are set aside`, len(b.IDs), store.MaxSetAside))
		return
	}
	by := claimed(r, b.By) // tcp.go
	var moved []store.HubRequeued
	err := s.Router.Store.Update(r.Context(), func(tx *store.Tx) (err error) {
		if moved, err = tx.RequeueHubSetAside(b.IDs, b.All); err != nil {
			return err
		}
		return s.Router.Audit(tx, hubRequeueAudit(r, by, moved)) // bans.go
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
		return
	case err != nil:
		s.Log.Error("set-aside messages not requeued", "err", err)
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	for _, m := range moved {
		s.Log.Info("set-aside message put back in the hub queue", "id", m.ID, "queue_id", m.QueueID, "topic", m.Topic, "by", by)
	}
	if moved == nil {
		moved = []store.HubRequeued{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "requeued": moved})
}

// who is the "by" of a request body for the history and the log: as
// given (at most 100 bytes), or "the HTTP API".
func who(by string) string {
	by = strings.TrimSpace(by)
	switch {
	case by == "":
		return "the HTTP API"
	case len(by) > 100:
		return strings.ToValidUTF8(by[:100], "")
	}
	return by
}

// decodeBody reads r's body, at most limit bytes, into v: one JSON
// object with only v's fields. It answers 413 or 400 (saying what is
// wanted) and reports false when it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any, want string) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body: %v", err))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("request body: want %s: %v", want, err))
		return false
	}
	return true
}
