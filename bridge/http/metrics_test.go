package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
	"github.com/outpost-sms/outpost/store/clock"
)

// scrapeTCP GETs /metrics with token and returns the status and body.
func scrapeTCP(t *testing.T, base, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Errorf("/metrics Content-Type %q", resp.Header.Get("Content-Type"))
	}
	// The client asked for gzip; the answer is plain (metrics.go: memory).
	if resp.Uncompressed {
		t.Error("/metrics answered gzip")
	}
	return resp.StatusCode, string(b)
}

// figures parses a scrape: the value of each series, keyed by its name
// and labels as Prometheus writes them (`name{a="x",b="y"}`); a
// histogram gives its _count and _sum.
func figures(t *testing.T, body string) map[string]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("scrape does not parse: %v\n%s", err, body)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := name
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.Counter.GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.Gauge.GetValue()
			case dto.MetricType_HISTOGRAM:
				k := strings.Replace(key, name, name+"_count", 1)
				out[k] = float64(m.Histogram.GetSampleCount())
				out[strings.Replace(key, name, name+"_sum", 1)] = m.Histogram.GetSampleSum()
			case dto.MetricType_UNTYPED:
				out[key] = m.Untyped.GetValue()
			}
		}
	}
	return out
}

// promtoolCheck runs promtool check metrics on a scrape: the test fails
// on what promtool reports, and without promtool when
// OUTPOST_REQUIRE_TOOLS is set.
func promtoolCheck(t *testing.T, body string) {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("OUTPOST_REQUIRE_TOOLS") != "" {
			t.Fatal("promtool is not installed (scripts/test.sh installs the prometheus package)")
		}
		t.Log("promtool is not installed; scripts/test.sh installs it: not checked")
		return
	}
	cmd := exec.Command(p, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestMetrics scrapes a real server on a real store: the socket and TCP
// (any valid token, no token refused), the figures move as messages are
// sent and refused, the modems' and links' states show, promtool finds
// nothing to say, and scrapes write nothing to the data folder.
func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Now())
	st, err := store.Open(context.Background(), filepath.Join(dir, "outpost.db"), store.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	router := bridge.New(st, nil)
	router.Add(phones{}) // addr_test.go: sends everything
	router.ModemIDs = []string{"m1", "m2"}
	sock, base := serveTCP(t, router)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	add := func(body string) string {
		t.Helper()
		code, b := sock("POST", "/v1/tokens", body)
		if code != 201 {
			t.Fatalf("token add %s: %d %s", body, code, b)
		}
		var v struct{ Token string }
		json.Unmarshal(b, &v)
		return v.Token
	}
	user, admin := add(`{"name":"scraper","role":"user"}`), add(`{"name":"ops","role":"admin"}`)
	if code, body := scrapeTCP(t, base, ""); code != 401 || !strings.Contains(body, `"error"`) {
		t.Errorf("no token: %d %s", code, body)
	}
	if code, body := scrapeTCP(t, base, "opt_nosuch"); code != 401 {
		t.Errorf("unknown token: %d %s", code, body)
	}
	code, body := scrapeTCP(t, base, admin)
	if code != 200 {
		t.Fatalf("admin scrape: %d %s", code, body)
	}
	before := figures(t, body)
	for _, k := range []string{`outpost_modem_parts_sent_total{modem="m1"}`, `outpost_modem_parts_sent_total{modem="m2"}`, `outpost_reassembly_waiting_messages`, `outpost_hub_queue_messages`} {
		if v, ok := before[k]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0 from the start", k, v, ok)
		}
	}

	router.ModemStatus("m1", map[string]any{"id": "m1", "state": "ready", "signal": 21, "signal_dbm": -71, "registered": true, "resets": 2, "hangs": 1,
		"storage": map[string]any{"used": 3, "total": 30}, "balance": map[string]any{"amount": 12.5, "currency": "USD", "low": false}})
	router.ModemStatus("m2", map[string]any{"id": "m2", "state": "failed", "signal": 99})
	router.LinkStatus("hub", map[string]any{"connected": true, "forwarded": 7})
	router.LinkStatus("xmpp", map[string]any{"state": "down"})
	for i, to := range []string{"+15555550100", "+15555550101"} {
		code, v := tcpCall(t, base, user, "POST", "/v1/messages", `{"id":"m`+to[1:]+`","to":"`+to+`","text":"hi"}`)
		if code != 201 {
			t.Fatalf("send %d: %d %v", i, code, v)
		}
	}
	if code, v := tcpCall(t, base, user, "POST", "/v1/messages", `{"to":"+15555550100"}`); code != 400 {
		t.Fatalf("empty send: %d %v", code, v)
	}
	// The same request again is no refusal; another one with its id is.
	if code, v := tcpCall(t, base, user, "POST", "/v1/messages", `{"id":"m15555550100","to":"+15555550100","text":"hi"}`); code != 201 {
		t.Fatalf("same send again: %d %v", code, v)
	}
	if code, v := tcpCall(t, base, user, "POST", "/v1/messages", `{"id":"m15555550100","to":"+15555550100","text":"other"}`); code != 409 {
		t.Fatalf("conflicting id: %d %v", code, v)
	}
	// A delivery left queued for a connector that is not there, a minute
	// old.
	if err := st.Update(context.Background(), func(tx *store.Tx) error {
		m := &store.Message{Direction: store.Out, Peer: "crm", Source: "test", Channel: "test", CreatedAt: tx.Now().Add(-time.Minute)}
		if err := tx.InsertMessage(m); err != nil {
			return err
		}
		return tx.InsertDelivery(&store.Delivery{MessageID: m.ID, Connector: "webhook", Recipient: "crm"}, "test")
	}); err != nil {
		t.Fatal(err)
	}

	var now map[string]float64
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body = scrapeTCP(t, base, user)
		if code != 200 {
			t.Fatalf("user scrape: %d %s", code, body)
		}
		now = figures(t, body)
		// The latency is observed just after the count moves: a scrape
		// may fall between the two.
		if now[`outpost_deliveries_total{connector="sms",state="sent"}`] == 2 && now[`outpost_delivery_latency_seconds_count{connector="sms",state="sent"}`] == 2 ||
			time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	promtoolCheck(t, body)
	for k, want := range map[string]float64{
		`outpost_messages_total{channel="http",direction="out"}`:                    2,
		`outpost_messages_total{channel="test",direction="out"}`:                    1,
		`outpost_deliveries_total{connector="sms",state="queued"}`:                  2,
		`outpost_deliveries_total{connector="sms",state="sending"}`:                 2,
		`outpost_deliveries_total{connector="sms",state="sent"}`:                    2,
		`outpost_delivery_latency_seconds_count{connector="sms",state="sent"}`:      2,
		`outpost_send_refused_total{channel="http",reason="invalid"}`:               1,
		`outpost_send_refused_total{channel="http",reason="conflict"}`:              1,
		`outpost_queue_deliveries{connector="webhook",state="queued"}`:              1,
		`outpost_modem_up{modem="m1"}`:                                              1,
		`outpost_modem_up{modem="m2"}`:                                              0,
		`outpost_modem_state{modem="m2",state="failed"}`:                            1,
		`outpost_modem_state{modem="m2",state="ready"}`:                             0,
		`outpost_modem_can_send{modem="m1"}`:                                        1,
		`outpost_modem_signal_dbm{modem="m1"}`:                                      -71,
		`outpost_modem_registered{modem="m1"}`:                                      1,
		`outpost_modem_resets_total{modem="m1"}`:                                    2,
		`outpost_modem_hangs_total{modem="m1"}`:                                     1,
		`outpost_modem_storage_used_messages{modem="m1"}`:                           3,
		`outpost_modem_storage_capacity_messages{modem="m1"}`:                       30,
		`outpost_modem_balance{currency="USD",modem="m1"}`:                          12.5,
		`outpost_modem_balance_low{modem="m1"}`:                                     0,
		`outpost_hub_link_up`:                                                       1,
		`outpost_hub_link_forwarded_total`:                                          7,
		`outpost_xmpp_link_up`:                                                      0,
		`outpost_queue_deliveries{connector="sms",state="queued"}`:                  -1, // absent: none left
		`outpost_modem_signal_dbm{modem="m2"}`:                                      -1, // absent: not known
		`outpost_delivery_latency_seconds_count{connector="sms",state="delivered"}`: -1,
	} {
		got, ok := now[k]
		switch {
		case want == -1 && ok:
			t.Errorf("%s = %v, want it absent", k, got)
		case want != -1 && (!ok || got != want):
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if age := now[`outpost_queue_oldest_age_seconds{connector="webhook",state="queued"}`]; age < 59 || age > 3600 {
		t.Errorf("oldest queued webhook delivery: %v s old, want about 60", age)
	}
	if now["outpost_store_commit_duration_seconds_count"] <= before["outpost_store_commit_duration_seconds_count"] ||
		now["outpost_store_writes_total"] <= before["outpost_store_writes_total"] {
		t.Errorf("commits did not move: %v → %v", before["outpost_store_commit_duration_seconds_count"], now["outpost_store_commit_duration_seconds_count"])
	}
	for _, k := range []string{"outpost_store_database_bytes", "outpost_disk_size_bytes", "outpost_uptime_seconds", "process_resident_memory_bytes"} {
		if now[k] <= 0 {
			t.Errorf("%s = %v, want > 0", k, now[k])
		}
	}
	if now[`outpost_build_info{gateway_id="",version=""}`] != 1 {
		t.Errorf("build info missing: %v", body[:min(len(body), 300)])
	}

	// The socket serves the same, with no token.
	code, b := sock("GET", "/metrics", "")
	if code != 200 || figures(t, string(b))[`outpost_deliveries_total{connector="sms",state="sent"}`] != 2 {
		t.Errorf("socket scrape: %d %.300s", code, b)
	}

	// Scrapes write nothing: reading the figures commits nothing, and a
	// token's last use is written at most hourly for scrapes (other
	// requests: every minute), so neither the commit count nor the
	// database files change.
	clk.Advance(10 * time.Minute)
	stat := func() string {
		var s []string
		for _, name := range []string{"outpost.db", "outpost.db-wal"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
				s = append(s, fmt.Sprintf("%s %d bytes, modified %s", name, fi.Size(), fi.ModTime()))
			}
		}
		return strings.Join(s, "; ")
	}
	_, body = scrapeTCP(t, base, user)
	writes := figures(t, body)["outpost_store_writes_total"]
	files := stat()
	for range 20 {
		scrapeTCP(t, base, user)
		scrapeTCP(t, base, admin)
		sock("GET", "/metrics", "")
	}
	_, body = scrapeTCP(t, base, user)
	if w := figures(t, body)["outpost_store_writes_total"]; w != writes {
		t.Errorf("60 scrapes committed %v writes", w-writes)
	}
	if f := stat(); f != files {
		t.Errorf("60 scrapes changed the database files:\n%s\n%s", files, f)
	}
}

// BenchmarkScrape is one scrape of /metrics on the socket, on a store of
// 100,000 finished messages (two thirds sent, each with its delivery and
// sent part), with none or 100,000 more queued (a backlog draining).
func BenchmarkScrape(b *testing.B) {
	for _, queued := range []int{0, 100000} {
		b.Run(fmt.Sprintf("finished=100000/queued=%d", queued), func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			st, err := store.Open(ctx, filepath.Join(dir, "outpost.db"), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			fill := func(from, n int, state string) {
				for _, q := range []string{
					`WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i+1 FROM n WHERE i < ?1 + ?2 - 1)
					 INSERT INTO messages (id, direction, peer, text, parts, channel, created_at)
					 SELECT printf('m-%09d', i), CASE WHEN i % 3 = 0 THEN 'in' ELSE 'out' END, '+15555550100', 'a message', 1, 'http', 1700000000000 + i FROM n`,
					`INSERT INTO deliveries (message_id, connector, recipient, state, updated_at)
					 SELECT id, CASE direction WHEN 'in' THEN 'mqtt' ELSE 'sms' END, peer, ?3, created_at FROM messages WHERE id >= printf('m-%09d', ?1)`,
					`INSERT INTO sent_parts (delivery_id, seq, total, modem, mr, recipient, state, sent_at)
					 SELECT id, 1, 1, 'm1', id % 256, recipient, 'delivered', updated_at FROM deliveries WHERE connector = 'sms' AND state = 'delivered' AND id > (SELECT COALESCE(MAX(delivery_id), 0) FROM sent_parts)`,
				} {
					if _, err := st.DB().ExecContext(ctx, q, from, n, state); err != nil {
						b.Fatal(err)
					}
				}
			}
			fill(0, 100000, store.Delivered)
			if queued > 0 {
				fill(100000, queued, store.Queued)
			}
			router := bridge.New(st, nil)
			router.ModemIDs = []string{"m1"}
			router.ModemStatus("m1", map[string]any{"id": "m1", "state": "ready", "signal_dbm": -71, "registered": true})
			call := request(b, router, filepath.Join(dir, "outpost.sock"))
			b.ResetTimer()
			for b.Loop() {
				if code, body := call("GET", "/metrics", ""); code != 200 || !strings.Contains(string(body), "outpost_store_wal_bytes") {
					b.Fatalf("%d %.300s", code, body)
				}
			}
		})
	}
}
