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
}
