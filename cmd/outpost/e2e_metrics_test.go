package main

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape GETs /metrics on the daemon's TCP listener with token and
// returns the status and the body.
func scrape(t *testing.T, base, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// series is a scrape's value of each series, keyed as
// `name{label="value",…}` (labels sorted, as Prometheus writes them); a
// histogram gives its _count.
func series(t *testing.T, body string) map[string]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key, v := name, 0.0
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v = m.Counter.GetValue()
			case dto.MetricType_GAUGE:
				v = m.Gauge.GetValue()
			case dto.MetricType_HISTOGRAM:
				key, v = name+"_count", float64(m.Histogram.GetSampleCount())
			default:
				continue
			}
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			out[key] = v
		}
	}
	return out
}

// TestMetricsEndToEnd: the daemon with [http] listen and the simulated
// modem serves /metrics to any valid token (none: 401), promtool check
// metrics finds nothing to say, and the figures move as a long message
// goes to the echo number and its echo comes back.
func TestMetricsEndToEnd(t *testing.T) {
	promtool := needTool(t, "promtool") // e2e_email_test.go
	addr := freePort(t)
	g := newGatewayWith(t, "", fmt.Sprintf("[http]\nlisten = %q\n", addr))
	g.start()
	base := "http://" + addr
	user := g.tokenAdd("grafana", "--role", "user") // e2e_tokens_test.go

	if code, body := scrape(t, base, ""); code != 401 || !strings.Contains(body, `"error"`) {
		t.Errorf("no token: %d %s", code, body)
	}
	waitFor(t, "the modem ready in /metrics", 20*time.Second, func() bool {
		_, body := scrape(t, base, user)
		return series(t, body)[`outpost_modem_up{modem="sim0"}`] == 1
	})
	code, body := scrape(t, base, user)
	if code != 200 {
		t.Fatalf("scrape: %d %s", code, body)
	}
	check := func(body string) {
		t.Helper()
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
	check(body)
	before := series(t, body)

	// Two parts (GSM 7-bit, 160 septets a single SMS), sent with the
	// token over TCP.
	text := strings.Repeat("metrics move ", 15)
	code, v := httpJSON(t, base, user, "POST", "/v1/messages", fmt.Sprintf(`{"to":"+15555550100","text":%q}`, text))
	if code != 201 {
		t.Fatalf("send: %d %v", code, v)
	}
	if code, _ := httpJSON(t, base, user, "POST", "/v1/messages", `{"to":"+15555550100","text":""}`); code != 400 {
		t.Errorf("empty send: %d, want 400", code)
	}
	g.waitDelivered(v["id"].(string))
	g.waitEcho(text)

	var now map[string]float64
	moved := map[string]float64{
		`outpost_messages_total{channel="http",direction="out"}`:                    1,
		`outpost_messages_total{channel="sms",direction="in"}`:                      1,
		`outpost_modem_parts_sent_total{modem="sim0"}`:                              2,
		`outpost_deliveries_total{connector="sms",state="sent"}`:                    1,
		`outpost_deliveries_total{connector="sms",state="delivered"}`:               1,
		`outpost_delivery_latency_seconds_count{connector="sms",state="sent"}`:      1,
		`outpost_delivery_latency_seconds_count{connector="sms",state="delivered"}`: 1,
		`outpost_send_refused_total{channel="http",reason="invalid"}`:               1,
	}
	// The echo's delivery to the local broker and the report's last
	// counts may trail the CLI's view by a scrape.
	waitFor(t, "the figures to move", 20*time.Second, func() bool {
		_, body = scrape(t, base, user)
		now = series(t, body)
		for k, d := range moved {
			if now[k]-before[k] != d {
				return false
			}
		}
		return true
	})
	for k, d := range moved {
		if now[k]-before[k] != d {
			t.Errorf("%s moved by %v (from %v), want %v", k, now[k]-before[k], before[k], d)
		}
	}
	check(body)
	for k, want := range map[string]float64{
		`outpost_modem_up{modem="sim0"}`:         1,
		`outpost_modem_registered{modem="sim0"}`: 1,
		`outpost_modem_can_send{modem="sim0"}`:   1,
		`outpost_reassembly_waiting_messages`:    0,
	} {
		if now[k] != want {
			t.Errorf("%s = %v, want %v", k, now[k], want)
		}
	}
	for _, k := range []string{`outpost_modem_signal_dbm{modem="sim0"}`, "outpost_store_database_bytes", "outpost_store_commit_duration_seconds_count", "process_resident_memory_bytes"} {
		if _, ok := now[k]; !ok {
			t.Errorf("%s missing", k)
		}
	}
	// The version is whatever the build stamped.
	if !strings.Contains(body, `outpost_build_info{gateway_id="gw1",version="`) {
		t.Errorf("outpost_build_info for gateway gw1 missing")
	}
	t.Logf("rss %.1f MiB after the exchange (race build); %d series, %d bytes a scrape", now["process_resident_memory_bytes"]/(1<<20), len(now), len(body))
}
