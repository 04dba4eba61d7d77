package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	c.applyModemDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
	if c.DataDir != "./outpost-data" || c.MQTT.Listen != "127.0.0.1:1883" || len(c.Modems) != 1 || c.Modems[0].Type != "sim" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestLoadContractKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outpost.toml")
	os.WriteFile(path, []byte(`
gateway_id = "gw1"
data_dir = "/var/lib/outpost"
[mqtt]
listen = "127.0.0.1:1884"
allow_anonymous = true
[[modem]]
type = "serial"
device = "/dev/ttyUSB2"
baud = 115200
pin = ""
command_timeout = "5s"
`), 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.GatewayID != "gw1" || c.MQTT.Listen != "127.0.0.1:1884" || len(c.Modems) != 1 {
		t.Fatalf("got %+v", c)
	}
	m := c.Modems[0]
	if m.Device != "/dev/ttyUSB2" || m.CommandTimeout.Seconds() != 5 || m.SendTimeout.Seconds() != 90 || m.ID != "modem0" {
		t.Fatalf("modem %+v", m)
	}
}

func TestLoadUnknownKeyNamesKeyAndLine(t *testing.T) {
	_, err := Parse("f.toml", []byte("gateway_id = \"gw\"\n[mqtt]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n"))
	if err == nil || !strings.Contains(err.Error(), `"mqtt.lisen"`) || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("want unknown key mqtt.lisen at line 4, got %v", err)
	}
	_, err = Parse("f.toml", []byte("[[modem]]\ntype = \"sim\"\nbaudrate = 9600\n"))
	if err == nil || !strings.Contains(err.Error(), `"modem.baudrate"`) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse("f.toml", []byte("gateway_id = \"gw\"\ndata_dir = = 1\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("got %v", err)
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c, err := Parse("f.toml", []byte(`
gateway_id = "a/b"
log_level = "loud"
[mqtt]
listen = "0.0.0.0:1883"
allow_anonymous = true
[[modem]]
type = "usb"
[[modem]]
type = "serial"
pin = "12"
`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`gateway_id = "a/b"`, `log_level = "loud"`, "mqtt.allow_anonymous = true", `modem 1: type = "usb"`,
		`modem 2: device = ""`, "modem 2: pin",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("gateway_id = \"gw\"\n[[modem]]\ntype=\"sim\"\n"))
	f.Add([]byte("[mqtt]\nlisten=1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("fuzz", b)
		if err == nil {
			_ = c.Validate()
		}
	})
}

func TestSMSAndXFormSections(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[sms]
reassembly_timeout = "2h"
national_languages = { "+90" = "turkish", "+91" = "Hindi" }
[xform]
port = 9200
[[xform.form]]
id = "visite"
prefix = "VS"
delimiter = "#"
fields = ["patient/nom", "age"]
[xform.openrosa]
url = "https://central.example.org/v1/key/abc/projects/1/submission"
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.SMS.ReassemblyTimeout.Duration != 2*time.Hour || c.XForm.Port != 9200 || !c.XForm.Enabled || c.XForm.MaxSize != 1<<20 ||
		len(c.XForm.Forms) != 1 || c.XForm.Forms[0].Fields[0] != "patient/nom" || c.SMS.NationalLanguages["+91"] != "Hindi" {
		t.Errorf("%+v", c)
	}
	c, _ = Parse("t.toml", []byte(`
[sms]
reassembly_timeout = "0s"
national_languages = { "90x" = "klingon" }
[xform]
port = 70000
[[xform.form]]
id = "1bad"
prefix = "VS"
fields = ["a b"]
[[xform.form]]
id = "ok"
prefix = "vs"
fields = []
[xform.openrosa]
url = "ftp://x"
`))
	err = c.Validate()
	for _, want := range []string{"sms.reassembly_timeout", "sms.national_languages", "klingon", "xform.port", `xform.form 1: id = "1bad"`,
		"xform.form 1: fields", `xform.form 2: prefix = "vs": is used by another form`, "xform.form 2: fields", "xform.openrosa.url"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
}

func TestGroups(t *testing.T) {
	c, err := Parse("f.toml", []byte("[groups]\nnurses = [\"+254700000001\", \"+254700000002\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.applyModemDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.Groups["nurses"]; len(got) != 2 || got[1] != "+254700000002" {
		t.Fatalf("groups %v", c.Groups)
	}
	c, err = Parse("f.toml", []byte("[groups]\nnurses = [\"+2547 0000\"]\nempty = []\n\"a b\" = [\"+123\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.applyModemDefaults()
	err = c.Validate()
	for _, want := range []string{`groups.nurses = "+2547 0000"`, "groups.empty", `groups = "a b"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestCheckListsEveryProblem: values of the wrong type, unknown keys and
// invalid values are all reported in one go, each with its line; one of
// them hides none of the others.
func TestCheckListsEveryProblem(t *testing.T) {
	_, err := Check("f.toml", []byte(`gateway_id = "a/b"
log_level = 3
[mqtt]
listen = 1883
allow_anonymous = "yes"
prt = 1
[[modem]]
type = "usb"
baud = "fast"
command_timeout = "soon"
[[modem]]
type = "sim"
baud = 9600
`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"line 2: log_level: must be a string, not an integer",
		"line 4: mqtt.listen: must be a string, not an integer",
		"line 5: mqtt.allow_anonymous: must be true or false, not a string",
		`line 6: unknown key "mqtt.prt"`,
		"line 9: modem 1: baud: must be an integer, not a string",
		`line 10: modem 1: command_timeout: not a duration`,
		`gateway_id = "a/b": must be one MQTT topic level`,
		`modem 1: type = "usb"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	// A good file still checks clean.
	if _, err := Check("g.toml", []byte("gateway_id = \"gw\"\n[[modem]]\ntype = \"sim\"\n")); err != nil {
		t.Fatal(err)
	}
	// A syntax error alone: nothing else can be said of the file.
	if _, err := Check("s.toml", []byte("gateway_id = = 1\nlog_level = 3\n")); err == nil || strings.Contains(err.Error(), "log_level") {
		t.Fatalf("syntax error: %v", err)
	}
}

// A packet size bound by default: an unbounded one let a 30 MB publish
// take the daemon from 22 to 235 MB.
func TestMaxPacketSizeDefaultAndBounds(t *testing.T) {
	c, err := Parse("f.toml", []byte("gateway_id = \"gw\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.MaxPacketSize != 256<<10 {
		t.Fatalf("mqtt.max_packet_size default = %d, want 262144", c.MQTT.MaxPacketSize)
	}
	for _, v := range []string{"0", "100", "268435456"} {
		c, err := Parse("f.toml", []byte("gateway_id = \"gw\"\n[mqtt]\nmax_packet_size = "+v+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "mqtt.max_packet_size") {
			t.Errorf("max_packet_size = %s: want an error naming mqtt.max_packet_size, got %v", v, err)
		}
	}
	c, _ = Parse("f.toml", []byte("gateway_id = \"gw\"\n[mqtt]\nmax_packet_size = 1048576\n"))
	if err := c.Validate(); err != nil || c.MQTT.MaxPacketSize != 1<<20 {
		t.Fatalf("1 MiB: %v, %d", err, c.MQTT.MaxPacketSize)
	}
}

// A forward or subscribe rule without qos is QoS 1: at QoS 0 a message
// leaves the durable queue when written, not when the hub acknowledged it.
func TestHubRulesDefaultToQoS1(t *testing.T) {
	c, err := Parse("f.toml", []byte(`gateway_id = "gw"
[[hub.forward]]
topic = "a/#"
qos = 0
[[hub.forward]]
topic = "b/#"
[[hub.subscribe]]
topic = "c/#"
[[hub.subscribe]]
topic = "d/#"
qos = 0
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if f := c.Hub.Forward; len(f) != 2 || f[0].QoS != 0 || f[1].QoS != 1 {
		t.Fatalf("forward: %+v, want qos 0 (given) then 1 (default)", f)
	}
	if s := c.Hub.Subscribe; len(s) != 2 || s[0].QoS != 1 || s[1].QoS != 0 {
		t.Fatalf("subscribe: %+v, want qos 1 (default) then 0 (given)", s)
	}
}

// The [email] section: off by default, its defaults when on, and every
// bad value named.
func TestEmailSection(t *testing.T) {
	c, err := Check("e.toml", []byte("gateway_id = \"gw\"\n[email]\nlisten = \"127.0.0.1:2525\"\ndomain = \"sms.example.org\"\nallow = [\"*@example.org\", \"ops@ngo.org\"]\nsmtp = \"smtp://relay:587\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Email.MaxParts != 3 || c.Email.ConversationTTL.Duration != 7*24*time.Hour || c.Email.RequireTLS {
		t.Errorf("defaults: %+v", c.Email)
	}
	if d := Default(); d.Email.Listen != "" || d.Email.SMTP != "" {
		t.Errorf("email on by default: %+v", d.Email)
	}
	_, err = Check("f.toml", []byte(`gateway_id = "gw"
[email]
listen = "127.0.0.1"
allow = ["ops", "a*@example.org"]
max_parts = 0
smtp = "http://relay"
conversation_ttl = "1s"
`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`email.listen = "127.0.0.1": must be host:port`,
		`email.domain = "": must be the phones' mail domain`,
		`email.allow = "ops": must be an address`,
		`email.allow = "a*@example.org"`,
		`email.max_parts = 0: must be 1–255`,
		`email.smtp = "http://relay": must be smtp://host:port`,
		`email.conversation_ttl = "1s": must be at least 1m`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	// Accounts: passwords never cross a network in clear.
	_, err = Check("a.toml", []byte(`gateway_id = "gw"
[email]
listen = "0.0.0.0:2525"
domain = "sms.example.org"
allow = ["*@example.org"]
tls_key = "k.pem"
user = "relay-user"
[[email.account]]
name = "clinic"
password_hash = "plain"
[[email.account]]
name = "clinic"
password_hash = "$2a$10$x"
`))
	for _, want := range []string{
		`email.tls_cert/tls_key = "": STARTTLS needs a certificate and its key`,
		`email.account 1: password_hash = "…": must be a bcrypt hash`,
		`email.account 2: name = "clinic": is listed twice`,
		`email.account = 2: passwords would cross the network in clear`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	_, err = Check("g.toml", []byte("gateway_id = \"gw\"\n[email]\nlisten = \"127.0.0.1:2525\"\ndomain = \"sms.example.org\"\n"))
	if err == nil || !strings.Contains(err.Error(), "email.allow = []: must list the senders") {
		t.Errorf("no allow list: %v", err)
	}
}

// [[webhook]] entries: the timeout defaults to 10s; a name that is not
// [a-z0-9_-] or is used twice, a URL that is not http(s), an unknown or
// missing event and a negative timeout are each reported.
func TestWebhooks(t *testing.T) {
	c, err := Check("f.toml", []byte(`[[webhook]]
name = "crm"
url = "https://crm.example.org/outpost"
events = ["sms.in", "sms.status", "xform"]
secret = "s"
[[webhook]]
name = "ops_2"
url = "http://127.0.0.1:8080/"
events = ["sms.status"]
timeout = "3s"
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Webhooks) != 2 || c.Webhooks[0].Timeout.Duration != 10*time.Second || c.Webhooks[1].Timeout.Duration != 3*time.Second ||
		c.Webhooks[0].Secret != "s" || len(c.Webhooks[0].Events) != 3 {
		t.Fatalf("webhooks %+v", c.Webhooks)
	}
	_, err = Check("f.toml", []byte(`[[webhook]]
name = "CRM"
url = "ftp://x"
events = ["sms.out"]
[[webhook]]
name = "a"
url = "https:///nohost"
timeout = "-1s"
[[webhook]]
name = "a"
url = "http://x"
events = ["xform"]
`))
	for _, want := range []string{`webhook 1: name = "CRM"`, `webhook 1: url = "ftp://x"`, `webhook 1: events = "sms.out"`,
		`webhook 2: url = "https:///nohost"`, "webhook 2: events = []: must list the events", `webhook 2: timeout = "-1s"`, `webhook 3: name = "a": is used by another webhook`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
}

func TestRoutes(t *testing.T) {
	c, err := Check("f.toml", []byte(`[[route]]
channel = "sms"
from = "+2547*"
modem = "m1"
keyword = "HELP"
to = ["mailto:ops@example.org", "webhook:kobo"]
reply = "Thanks, we got it."
tag = "help"
stop = true
[[route]]
form = "enquete_menage"
tag = "survey"
[[modem]]
id = "m1"
type = "sim"
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes) != 2 || c.Routes[0].From != "+2547*" || !c.Routes[0].Stop || len(c.Routes[0].To) != 2 || c.Routes[1].Form != "enquete_menage" {
		t.Fatalf("routes %+v", c.Routes)
	}
	_, err = Check("f.toml", []byte(`[[route]]
keyword = "HELP"
[[route]]
channel = "fax"
modem = "m9"
from = "+25[47"
keyword = "two words"
to = ["", " "]
tag = "a b"
reply = "bell\u0007"
`))
	// Routes are numbered from 1, as the daemon names them ("route 2").
	for _, want := range []string{"route 1: does nothing: give at least one of to, reply or tag\n", `route 2: channel = "fax"`,
		`route 2: from = "+25[47": is not a valid glob`, `route 2: keyword = "two words"`, `route 2: to = "": must be an address`, `route 2: to = " "`,
		`route 2: tag = "a b"`, `route 2: modem = "m9": is not the id of a [[modem]] (sim0)`, `route 2: reply = "bell\a"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
}

// A webhook's timeout given as "0s" is refused, not read as the default;
// an event listed twice is refused; no message of the webhook, route and
// email sections shows Go's syntax ([]string{…}, %!v, <nil>, struct
// braces): values are written as the file writes them.
func TestWebhookRouteEmailMessages(t *testing.T) {
	_, err := Check("f.toml", []byte(`[[webhook]]
name = "crm"
url = "http://127.0.0.1:9/hook"
events = ["sms.in", "sms.status", "sms.in"]
timeout = "0s"
[[webhook]]
name = "bad name"
url = "ftp://x"
timeout = "-5s"
[[route]]
channel = "fax"
to = ["", "webhook:crm"]
reply = "bell\u0007"
tag = "a b"
[[route]]
keyword = "two words"
[email]
listen = "nope"
domain = "a b"
smtp = "ftp://x"
max_parts = 0
conversation_ttl = "1s"
allow = ["ops", "a*@example.org"]
tls_cert = "c.pem"
[[email.account]]
name = ""
password_hash = "x"
`))
	if err == nil {
		t.Fatal("a bad config is taken")
	}
	msg := err.Error()
	for _, want := range []string{
		`webhook 1: timeout = "0s": must be more than 0`,
		`webhook 1: events = "sms.in": is listed twice`,
		`webhook 2: events = []: must list the events it gets`,
		`webhook 2: timeout = "-5s"`,
		`route 1: channel = "fax"`,
		`route 2: does nothing`,
		`email.allow = "ops"`,
		`email.account 1: name = "": must be a printable name`,
		`email.tls_cert/tls_key = "c.pem"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("lacks %q:\n%s", want, msg)
		}
	}
	for _, goSyntax := range []string{"[]string", "%!", "<nil>", "(nil)", "{", "[0]", "[1]"} {
		if strings.Contains(msg, goSyntax) {
			t.Errorf("a message shows %q:\n%s", goSyntax, msg)
		}
	}
	// Without a timeout, the default.
	c, err := Check("f.toml", []byte("[[webhook]]\nname = \"crm\"\nurl = \"http://x/\"\nevents = [\"sms.in\"]\n"))
	if err != nil || c.Webhooks[0].Timeout.Duration != DefaultWebhookTimeout {
		t.Errorf("no timeout: %v, %v", c.Webhooks, err)
	}
}

// route_reply_limit: 1 by default in route_reply_window (1h), 0 for no
// bound, negative refused.
func TestRouteReplyLimit(t *testing.T) {
	c, err := Check("f.toml", []byte(""))
	if err != nil || c.RouteReplyLimit != 1 || c.RouteReplyWindow.Duration != time.Hour {
		t.Errorf("default %d in %v, %v", c.RouteReplyLimit, c.RouteReplyWindow, err)
	}
	c, err = Check("f.toml", []byte("route_reply_limit = 3\nroute_reply_window = \"10m\"\n"))
	if err != nil || c.RouteReplyLimit != 3 || c.RouteReplyWindow.Duration != 10*time.Minute {
		t.Errorf("3 in 10m: %d in %v, %v", c.RouteReplyLimit, c.RouteReplyWindow, err)
	}
	if _, err := Check("f.toml", []byte("route_reply_window = \"0s\"\n")); err == nil || !strings.Contains(err.Error(), "route_reply_window") {
		t.Errorf("0s: %v", err)
	}
	c, err = Check("f.toml", []byte("route_reply_limit = 0\n"))
	if err != nil || c.RouteReplyLimit != 0 {
		t.Errorf("0: %d, %v", c.RouteReplyLimit, err)
	}
	if _, err := Check("f.toml", []byte("route_reply_limit = -1\n")); err == nil || !strings.Contains(err.Error(), "route_reply_limit = -1: must be 0 (no bound) or more") {
		t.Errorf("-1: %v", err)
	}
}

// A value of the wrong type in one [[webhook]] is reported for that
// webhook, on its line, in words (not Go's "destination has type
// slice"); the other webhooks keep theirs (their events were taken out
// too, and reported missing).
func TestWrongTypeInOneTable(t *testing.T) {
	for range 5 { // toml's order of keys is a map's
		_, err := Check("f.toml", []byte(`[[webhook]]
name = "crm"
url = "http://x/"
events = ["sms.in"]

[[webhook]]
name = "kobo"
url = "http://y/"
events = "xform"
timeout = 5
`))
		if err == nil {
			t.Fatal("taken")
		}
		msg := err.Error()
		for _, want := range []string{`f.toml: line 9: webhook 2: events: must be a list, not a string`,
			`f.toml: line 10: webhook 2: timeout: not a duration`} {
			if !strings.Contains(msg, want) {
				t.Errorf("lacks %q:\n%s", want, msg)
			}
		}
		for _, wrong := range []string{"webhook 1", "slice", "line 4"} {
			if strings.Contains(msg, wrong) {
				t.Errorf("says %q:\n%s", wrong, msg)
			}
		}
	}
}

// email.subject says what a mail's subject does to its SMS (ignore, the
// default, or prefix), and email.subject_template is the subject of a
// phone's SMS mailed when it answers no mail with a subject (default
// "SMS from {from}"): an unknown value, an unknown or unclosed
// placeholder, a control character or an empty template are refused.
func TestEmailSubjectKeys(t *testing.T) {
	base := "gateway_id = \"gw\"\n[email]\nlisten = \"127.0.0.1:2525\"\ndomain = \"sms.example.org\"\nallow = [\"*@example.org\"]\n"
	c, err := Check("e.toml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.Email.Subject != "ignore" || c.Email.SubjectTemplate != "SMS from {from}" {
		t.Errorf("defaults: subject %q, subject_template %q", c.Email.Subject, c.Email.SubjectTemplate)
	}
	c, err = Check("p.toml", []byte(base+"subject = \"prefix\"\nsubject_template = \"{number} texted via {modem}\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Email.Subject != "prefix" || c.Email.SubjectTemplate != "{number} texted via {modem}" {
		t.Errorf("set: %+v", c.Email)
	}
	for _, bad := range []struct{ toml, want string }{
		{`subject = "append"`, `email.subject = "append": must be "ignore" (the subject is not sent, the default) or "prefix"`},
		{`subject_template = "SMS from {sender}"`, `email.subject_template = "SMS from {sender}": unknown placeholder {sender} (known: {from}, {number}, {modem})`},
		{`subject_template = "SMS from {from"`, `email.subject_template = "SMS from {from": a "{" without its "}"`},
		{`subject_template = "SMS from from}"`, `email.subject_template = "SMS from from}": a "}" without its "{"`},
		{`subject_template = " "`, `email.subject_template = " ": must not be empty`},
		{`subject_template = "SMS\tfrom\u0007{from}"`, `email.subject_template = "SMS\tfrom\a{from}": control characters are not allowed`},
	} {
		_, err := Check("b.toml", []byte(base+bad.toml+"\n"))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.toml, err, bad.want)
		}
	}
}

// [keywords]: English confirmations by default; words added per language
// are single words, none both a stop and a join word; a language has a
// name.
func TestKeywords(t *testing.T) {
	c, err := Check("f.toml", []byte(""))
	if err != nil || !strings.Contains(c.Keywords.StopReply, "START") || !strings.Contains(c.Keywords.JoinReply, "{topic}") {
		t.Errorf("defaults: %+v, %v", c.Keywords, err)
	}
	c, err = Check("f.toml", []byte("[keywords]\nstop = [\"ACHA\"]\n[[keywords.language]]\nname = \"sw\"\njoin = [\"INGIA\"]\nleave = [\"TOKA\"]\njoin_reply = \"Umejiunga na {topic}.\"\n"))
	if err != nil || len(c.Keywords.Languages) != 1 || c.Keywords.Languages[0].Join[0] != "INGIA" || c.Keywords.Stop[0] != "ACHA" {
		t.Errorf("sw: %+v, %v", c.Keywords, err)
	}
	_, err = Check("f.toml", []byte("[keywords]\njoin = [\"STOP\", \"two words\"]\n[[keywords.language]]\nleave = [\"X\"]\n"))
	for _, want := range []string{`keywords.join = "STOP": is already a stop word`, `keywords.join = "two words": is not one word`, `keywords.language 1: name`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

// Each hub bound is checked on its own (one message for three fields
// mixed good values with the bad one), and an age bound too short for a
// message to reach the hub is refused.
func TestHubBoundsEachOnItsOwn(t *testing.T) {
	_, err := Check("f.toml", []byte("[hub]\nurl = \"tcp://127.0.0.1:1883\"\nmax_messages = -3\nmax_age = \"-5m\"\n"))
	for _, want := range []string{`hub.max_messages = -3: must not be negative`, `hub.max_age = "-5m0s": must not be negative`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "max_bytes") {
		t.Errorf("a good max_bytes is named: %v", err)
	}
	if _, err := Check("f.toml", []byte("[hub]\nurl = \"tcp://127.0.0.1:1883\"\nmax_age = \"1ns\"\n")); err == nil || !strings.Contains(err.Error(), "must be at least 1s") {
		t.Errorf("max_age = 1ns: %v", err)
	}
}

// A route with a keyword and a form can never match: refused.
func TestRouteKeywordAndForm(t *testing.T) {
	_, err := Check("f.toml", []byte("[[route]]\nkeyword = \"HELP\"\nform = \"f1\"\ntag = \"x\"\n"))
	if err == nil || !strings.Contains(err.Error(), `route 1: keyword = "HELP": and form = "f1" can never both match`) {
		t.Errorf("keyword and form: %v", err)
	}
}

// [retention]: one year by default; 0 keeps; under 1h or negative refused.
func TestRetention(t *testing.T) {
	c, err := Check("f.toml", nil)
	if err != nil || c.Retention.Messages.Duration != 8760*time.Hour || c.Retention.Events.Duration != 8760*time.Hour {
		t.Fatalf("default: %+v, %v", c.Retention, err)
	}
	c, err = Check("f.toml", []byte("[retention]\nmessages = \"0s\"\nevents = \"720h\"\n"))
	if err != nil || c.Retention.Messages.Duration != 0 || c.Retention.Events.Duration != 720*time.Hour {
		t.Fatalf("given: %+v, %v", c.Retention, err)
	}
	_, err = Check("f.toml", []byte("[retention]\nmessages = \"-1h\"\nevents = \"5m\"\n"))
	for _, want := range []string{`retention.messages = "-1h0m0s": must be 0`, `retention.events = "5m0s": must be 0`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

// retention.audit: one year by default; 0 keeps it; under 1h refused.
func TestRetentionAudit(t *testing.T) {
	c, err := Check("f.toml", nil)
	if err != nil || c.Retention.Audit.Duration != 8760*time.Hour {
		t.Fatalf("default: %+v, %v", c.Retention, err)
	}
	c, err = Check("f.toml", []byte("[retention]\naudit = \"0s\"\n"))
	if err != nil || c.Retention.Audit.Duration != 0 {
		t.Fatalf("0: %+v, %v", c.Retention, err)
	}
	_, err = Check("f.toml", []byte("[retention]\naudit = \"30m\"\n"))
	if err == nil || !strings.Contains(err.Error(), `retention.audit = "30m0s": must be 0 (keep them) or at least 1h`) {
		t.Errorf("30m: %v", err)
	}
}
