package bridge

import (
	"strings"
	"testing"
	"time"
)

func TestParseSend(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{`{"to":"+15555550100","text":"hi"}`, ""},
		{`{"to":["+15555550100","+15555550101"],"text":"hi","report":false}`, ""},
		{`{"to":"+15555550100","data_hex":"0A0B"}`, ""},
		{`{"to":"+15555550100","text":"hi"`, "bad JSON"},
		{`not json`, "bad JSON"},
		{`{"to":"+15555550100","txt":"hi"}`, `unknown field "txt"`},
		{`{"text":"hi"}`, `"to" is missing`},
		{`{"to":5,"text":"hi"}`, `"to" must be a phone number`},
		{`{"to":[5],"text":"hi"}`, `"to" must be a phone number or a list`},
		{`{"to":"+15555550100","text":"hi","data_hex":"00"}`, "not both"},
		{`{"to":"+15555550100","data_hex":"0G"}`, "not hex"},
		{`{"to":"+15555550100","data_hex":"0A","port":9200,"validity":"12h"}`, ""},
		{`{"to":"+15555550100","text":"hi","port":9200}`, `"port" goes with "data_hex"`},
		{`{"to":"+15555550100","data_hex":"0A","port":70000}`, "must be 1–65535"},
		{`{"to":"+15555550100","text":"hi","validity":"soon"}`, `not a duration`},
		{`{"to":"+15555550100","text":"hi","priority":9,"not_before":"2030-01-02T03:04:05Z","expires":"2030-01-03T00:00:00+01:00"}`, ""},
		{`{"to":"+15555550100","text":"hi","not_before":"30m","expires":"2h"}`, ""},
		{`{"to":"group:nurses","text":"hi"}`, ""},
		{`{"to":"+15555550100","text":"hi","priority":10}`, `"priority" 10: give low, normal, high, urgent, or a number from -1 to 9`},
		{`{"to":"+15555550100","text":"hi","priority":"high"}`, ""},
		{`{"to":"+15555550100","text":"hi","priority":"soon"}`, `"priority" "soon": give low, normal, high, urgent`},
		{`{"to":"+15555550100","text":"hi","priority":true}`, `"priority" true: give low`},
		{`{"to":"+15555550100","text":"hi","not_before":"tomorrow"}`, `"not_before" "tomorrow": give a time`},
		{`{"to":"+15555550100","text":"hi","expires":"-5m"}`, `"expires" "-5m"`},
		// "port" is checked first; an empty "data_hex" is its own error.
		{`{"to":"+15555550100","data_hex":"","port":70000}`, `"port" 70000: must be 1–65535`},
		{`{"data_hex":"","port":70000}`, `"port" 70000: must be 1–65535`},
		{`{"to":"+15555550100","text":"hi","port":-1}`, `"port" -1: must be 1–65535`},
		{`{"to":"+15555550100","data_hex":"","port":9200}`, `"data_hex" is empty`},
		{`{"to":"+15555550100","data_hex":""}`, `"data_hex" is empty`},
		{`{"to":"+15555550100","text":"","data_hex":""}`, `"data_hex" is empty`},
		// Nothing but white space after the object.
		{`{"to":"+15555550100","text":"hi"}garbage`, `bad JSON: something after the request at byte 33: "garbage"`},
		{`{"to":"+15555550100","text":"hi"} {"to":"+15555550101","text":"hi"}`, `bad JSON: something after the request at byte 34: "{\"to\":\"+15555550101\"…"`},
		{`{"to":"+15555550100","text":"hi"}}`, `bad JSON: something after the request`},
		{`{"to":"+15555550100","text":"hi"}` + " \r\n\t", ""},
	} {
		req, _, err := ParseSend([]byte(c.in), "mqtt")
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.in, err, c.err)
		case c.err == "" && (len(req.To) == 0 || req.Source != "mqtt"):
			t.Errorf("%s: request %+v", c.in, req)
		}
	}
	req, _, _ := ParseSend([]byte(`{"to":"+1555","text":"x","report":false}`), "mqtt")
	if req.Report {
		t.Error(`"report": false ignored`)
	}
	req, _, _ = ParseSend([]byte(`{"to":"+1555","text":"x"}`), "mqtt")
	if !req.Report {
		t.Error("status reports are on by default")
	}
	req, _, _ = ParseSend([]byte(`{"to":"+1555","data_hex":"0A","port":9200,"validity":"12h"}`), "mqtt")
	if req.Port != 9200 || req.Validity != 12*time.Hour {
		t.Errorf("port %d validity %v", req.Port, req.Validity)
	}
	before := time.Now()
	req, _, _ = ParseSend([]byte(`{"to":"+1555","text":"x","priority":3,"not_before":"30m","expires":"2030-01-03T00:00:00+01:00"}`), "mqtt")
	if req.Priority != 3 || req.NotBefore.Sub(before) < 30*time.Minute || req.NotBefore.Sub(before) > 31*time.Minute ||
		!req.Expires.Equal(time.Date(2030, 1, 2, 23, 0, 0, 0, time.UTC)) {
		t.Errorf("priority %d not_before %v expires %v", req.Priority, req.NotBefore, req.Expires)
	}
}
