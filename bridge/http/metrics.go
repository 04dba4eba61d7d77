package http

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

// metrics is GET /metrics, in the Prometheus text format: counters of
// events fed by the store's hooks and the router (in memory: they start
// at zero with the daemon, as Prometheus expects), and a collector that
// reads the rest at scrape time (queues, modems, links, files) in one
// read transaction, with no write: a scrape costs the SD card nothing.
type metrics struct {
	reg        *prometheus.Registry
	messages   *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	parts      *prometheus.CounterVec
	refused    *prometheus.CounterVec
	commits    prometheus.Histogram
	writes     prometheus.Counter
	handler    http.Handler
}

// metricsTouchEvery is how often a token used only for scrapes has its
// last use written: a scrape every 15 s would write once a minute
// otherwise.
const metricsTouchEvery = time.Hour

// touchEvery is how often r's token has its last use written.
func touchEvery(r *http.Request) time.Duration {
	if r.Method == http.MethodGet && r.URL.Path == "/metrics" {
		return metricsTouchEvery
	}
	return time.Minute
}

// initMetrics builds the registry and hooks its counters to the store and
// the router: Listen calls it, before the router runs, so that nothing is
// missed.
func (s *Server) initMetrics() {
	s.metricsOnce.Do(func() {
		m := &metrics{reg: prometheus.NewRegistry()}
		m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outpost_messages_total",
			Help: "Messages stored since start, by direction (in: received, out: send requests) and the channel they came from."}, []string{"direction", "channel"})
		m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outpost_deliveries_total",
			Help: "Deliveries (a message to one destination) created in or moved to each state since start, by connector."}, []string{"connector", "state"})
		m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "outpost_delivery_latency_seconds",
			Help:    "Time from a message being stored to its delivery being sent (accepted by the connector or the network) or delivered (reported), by connector.",
			Buckets: []float64{0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 4 * 3600, 24 * 3600}}, []string{"connector", "state"})
		m.parts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outpost_modem_parts_sent_total",
			Help: "SMS parts the network accepted from each modem since start."}, []string{"modem"})
		m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outpost_send_refused_total",
			Help: "Send requests refused since start, by channel and reason (invalid, conflict, opted_out, quota)."}, []string{"channel", "reason"})
		m.commits = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "outpost_store_commit_duration_seconds",
			Help:    "Duration of each group commit of the store, from begin to durable commit (fsync included).",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}})
		m.writes = prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_store_writes_total",
			Help: "Writes committed by the store since start (a group commit holds several)."})
		for _, id := range s.Router.ModemIDs {
			m.parts.WithLabelValues(id)
		}
		m.reg.MustRegister(m.messages, m.deliveries, m.latency, m.parts, m.refused, m.commits, m.writes,
			// The process's memory, CPU and files; not the Go runtime's
			// figures: reading them cost a megabyte of RSS at 15-second
			// scrapes, on a box that has 30 for everything.
			&stateCollector{s: s}, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		s.Router.Store.SetHooks(store.Hooks{
			Commit: func(took time.Duration, writes int) {
				m.commits.Observe(took.Seconds())
				m.writes.Add(float64(writes))
			},
			Message: func(direction, channel string) { m.messages.WithLabelValues(direction, channel).Inc() },
			Delivery: func(connector, state string, age time.Duration) {
				m.deliveries.WithLabelValues(connector, state).Inc()
				if age >= 0 {
					m.latency.WithLabelValues(connector, state).Observe(age.Seconds())
				}
			},
			SentPart: func(modem string) { m.parts.WithLabelValues(modem).Inc() },
		})
		s.Router.OnRefused(func(channel string, err error) { m.refused.WithLabelValues(channel, refusal(err)).Inc() })
		m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn),
			// A store that cannot be read leaves out its figures, not
			// the modems' and the process's.
			ErrorHandling: promhttp.ContinueOnError,
			// A scrape is some 13 KB on the LAN; a gzip writer for it
			// held more than a megabyte.
			DisableCompression: true,
		})
		s.metrics = m
	})
}

// refusal is the reason label of a refused send request.
func refusal(err error) string {
	switch {
	case errors.Is(err, bridge.ErrQuota):
		return "quota"
	case errors.Is(err, bridge.ErrOptedOut):
		return "opted_out"
	case errors.Is(err, bridge.ErrConflict):
		return "conflict"
	}
	return "invalid"
}

// serveMetrics answers GET /metrics.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	s.initMetrics()
	s.metrics.handler.ServeHTTP(w, r)
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// The figures read at scrape time.
var (
	dBuild       = desc("outpost_build_info", "Always 1: the version and gateway id as labels.", "version", "gateway_id")
	dUptime      = desc("outpost_uptime_seconds", "Time since the API started, on the monotonic clock (the wall clock may be wrong).")
	dQueue       = desc("outpost_queue_deliveries", "Unfinished deliveries by connector and state (scheduled, queued, sending, sent: waiting for a delivery report).", "connector", "state")
	dQueueAge    = desc("outpost_queue_oldest_age_seconds", "Age of the oldest message among the unfinished deliveries of each connector and state.", "connector", "state")
	dReassMsgs   = desc("outpost_reassembly_waiting_messages", "Long inbound messages waiting for missing parts.")
	dReassParts  = desc("outpost_reassembly_waiting_parts", "Parts held for the long inbound messages that wait.")
	dHubQueue    = desc("outpost_hub_queue_messages", "Messages waiting in the queue for the hub.")
	dHubBytes    = desc("outpost_hub_queue_bytes", "Bytes waiting in the queue for the hub.")
	dHubAside    = desc("outpost_hub_queue_set_aside_messages", "Messages the hub kept refusing, set aside from its queue.")
	dHubDropped  = desc("outpost_hub_queue_dropped_total", "Messages dropped from the full hub queue (its limits).")
	dHubExpired  = desc("outpost_hub_queue_expired_total", "Messages expired in the hub queue.")
	dHubRefused  = desc("outpost_hub_queue_refused_total", "Messages refused by the full hub queue.")
	dHubRequeued = desc("outpost_hub_queue_requeued_total", "Set-aside messages put back in the hub queue.")
	dHubUp       = desc("outpost_hub_link_up", "1 while the link to the hub is connected (only when a hub is configured).")
	dHubFwd      = desc("outpost_hub_link_forwarded_total", "Messages the hub acknowledged since start.")
	dXMPPUp      = desc("outpost_xmpp_link_up", "1 while the XMPP link is logged in (only when XMPP is configured).")
	dDBBytes     = desc("outpost_store_database_bytes", "Size of the SQLite database file.")
	dWALBytes    = desc("outpost_store_wal_bytes", "Size of the SQLite write-ahead log.")
	dDiskFree    = desc("outpost_disk_free_bytes", "Space left to the daemon on the file system of the data folder.")
	dDiskSize    = desc("outpost_disk_size_bytes", "Size of the file system of the data folder.")
	dPruned      = desc("outpost_retention_pruned_total", "What the retention pruner deleted since start (messages, events, audit entries).", "what")
	dModemUp     = desc("outpost_modem_up", "1 while the modem is ready.", "modem")
	dModemState  = desc("outpost_modem_state", "1 for the modem's state (connecting, ready, disconnected, failed), 0 for the others.", "modem", "state")
	dCanSend     = desc("outpost_modem_can_send", "1 while the modem can be given a message (ready, registered, not paused for its balance).", "modem")
	dSignal      = desc("outpost_modem_signal_dbm", "Signal strength of the modem (only when known).", "modem")
	dRegistered  = desc("outpost_modem_registered", "1 while the modem is registered on the network.", "modem")
	dBalance     = desc("outpost_modem_balance", "The SIM's credit as the last balance check read it (only when it read an amount).", "modem", "currency")
	dBalanceLow  = desc("outpost_modem_balance_low", "1 while the SIM's credit is below its threshold.", "modem")
	dReconnects  = desc("outpost_modem_reconnects_total", "Times the modem's connection was made again since start.", "modem")
	dHangs       = desc("outpost_modem_hangs_total", "Connections to the modem that ended with it no longer answering, since start.", "modem")
	dResets      = desc("outpost_modem_resets_total", "Reset steps taken to heal the modem since start.", "modem")
	dCalls       = desc("outpost_modem_calls_total", "Incoming calls since start.", "modem")
	dSIMUsed     = desc("outpost_modem_storage_used_messages", "Messages held in the modem's message storage.", "modem")
	dSIMTotal    = desc("outpost_modem_storage_capacity_messages", "Capacity of the modem's message storage.", "modem")
	modemStates  = []string{"connecting", "ready", "disconnected", "failed"}
	allStateDesc = []*prometheus.Desc{dBuild, dUptime, dQueue, dQueueAge, dReassMsgs, dReassParts, dHubQueue, dHubBytes, dHubAside,
		dHubDropped, dHubExpired, dHubRefused, dHubRequeued, dHubUp, dHubFwd, dXMPPUp, dDBBytes, dWALBytes, dDiskFree, dDiskSize, dPruned,
		dModemUp, dModemState, dCanSend, dSignal, dRegistered, dBalance, dBalanceLow, dReconnects, dHangs, dResets, dCalls, dSIMUsed, dSIMTotal}
)

// stateCollector reads the daemon's state at scrape time.
type stateCollector struct{ s *Server }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allStateDesc {
		ch <- d
	}
}

// modemFigures are the fields of a modem's status (hw.Status, which
// bridge/http does not import) that metrics show.
type modemFigures struct {
	State      string `json:"state"`
	SignalDBm  int    `json:"signal_dbm"`
	Registered bool   `json:"registered"`
	Reconnects int    `json:"reconnects"`
	Hangs      int    `json:"hangs"`
	Resets     int    `json:"resets"`
	Calls      int    `json:"calls"`
	Storage    *struct {
		Used  int `json:"used"`
		Total int `json:"total"`
	} `json:"storage"`
	Balance *struct {
		Amount   *float64 `json:"amount"`
		Currency string   `json:"currency"`
		Low      bool     `json:"low"`
	} `json:"balance"`
}

// linkFigures are the fields of the hub's and XMPP's link states.
type linkFigures struct {
	Connected bool   `json:"connected"` // hub
	Forwarded int64  `json:"forwarded"` // hub
	State     string `json:"state"`     // xmpp
}

// as decodes a status of another package by its JSON form.
func as(status any, v any) bool {
	b, err := json.Marshal(status)
	return err == nil && json.Unmarshal(b, v) == nil
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	gauge(ch, dBuild, 1, s.Version, s.GatewayID)
	gauge(ch, dUptime, time.Since(s.started).Seconds())
	c.collectStore(ch)
	for id, st := range s.Router.Modems() {
		var m modemFigures
		if !as(st, &m) {
			continue
		}
		gauge(ch, dModemUp, flag(m.State == "ready"), id)
		known := false
		for _, state := range modemStates {
			known = known || state == m.State
			gauge(ch, dModemState, flag(state == m.State), id, state)
		}
		if !known && m.State != "" {
			gauge(ch, dModemState, 1, id, m.State)
		}
		canSend := m.State == "ready"
		if s.CanSend != nil {
			canSend = s.CanSend(st)
		}
		gauge(ch, dCanSend, flag(canSend), id)
		if m.SignalDBm != 0 {
			gauge(ch, dSignal, float64(m.SignalDBm), id)
		}
		gauge(ch, dRegistered, flag(m.Registered), id)
		if b := m.Balance; b != nil {
			if b.Amount != nil {
				gauge(ch, dBalance, *b.Amount, id, b.Currency)
			}
			gauge(ch, dBalanceLow, flag(b.Low), id)
		}
		counter(ch, dReconnects, float64(m.Reconnects), id)
		counter(ch, dHangs, float64(m.Hangs), id)
		counter(ch, dResets, float64(m.Resets), id)
		counter(ch, dCalls, float64(m.Calls), id)
		if m.Storage != nil && m.Storage.Total > 0 {
			gauge(ch, dSIMUsed, float64(m.Storage.Used), id)
			gauge(ch, dSIMTotal, float64(m.Storage.Total), id)
		}
	}
	links := s.Router.Links()
	if st, ok := links["hub"]; ok {
		var l linkFigures
		if as(st, &l) {
			gauge(ch, dHubUp, flag(l.Connected))
			counter(ch, dHubFwd, float64(l.Forwarded))
		}
	}
	if st, ok := links["xmpp"]; ok {
		var l linkFigures
		if as(st, &l) {
			gauge(ch, dXMPPUp, flag(l.State == "up"))
		}
	}
	if s.Pruner != nil {
		p := s.Pruner.Stats()
		counter(ch, dPruned, float64(p.Pruned), "messages")
		counter(ch, dPruned, float64(p.EventsGone), "events")
		counter(ch, dPruned, float64(p.AuditGone), "audit")
	}
}

// collectStore reads the store's figures in one read transaction.
func (c *stateCollector) collectStore(ch chan<- prometheus.Metric) {
	s := c.s
	f := s.Router.Store.Files()
	gauge(ch, dDBBytes, float64(f.DBBytes))
	gauge(ch, dWALBytes, float64(f.WALBytes))
	disk := diskOf(filepath.Dir(s.Socket))
	if disk.TotalBytes > 0 {
		gauge(ch, dDiskFree, float64(disk.FreeBytes))
		gauge(ch, dDiskSize, float64(disk.TotalBytes))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var (
		backlog []store.Backlog
		ra      store.Reassembly
		hub     store.HubStats
		now     time.Time
	)
	err := s.Router.Store.View(ctx, func(tx *store.Tx) (err error) {
		now = tx.Now()
		if backlog, err = tx.Backlog(); err != nil {
			return err
		}
		if ra, err = tx.OpenReassembly(); err != nil {
			return err
		}
		hub, err = tx.HubQueueStats()
		return err
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(dQueue, err)
		return
	}
	for _, b := range backlog {
		gauge(ch, dQueue, float64(b.Count), b.Connector, b.State)
		if !b.Oldest.IsZero() {
			gauge(ch, dQueueAge, max(now.Sub(b.Oldest).Seconds(), 0), b.Connector, b.State)
		}
	}
	gauge(ch, dReassMsgs, float64(ra.Messages))
	gauge(ch, dReassParts, float64(ra.Parts))
	gauge(ch, dHubQueue, float64(hub.Messages))
	gauge(ch, dHubBytes, float64(hub.Bytes))
	gauge(ch, dHubAside, float64(hub.SetAside))
	counter(ch, dHubDropped, float64(hub.Dropped))
	counter(ch, dHubExpired, float64(hub.Expired))
	counter(ch, dHubRefused, float64(hub.Refused))
	counter(ch, dHubRequeued, float64(hub.Requeued))
}
