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
		`gateway_id = "a/b"`, `log_level = "loud"`, "mqtt.allow_anonymous = true", `modem[0].type = "usb"`,
		`modem[1].device = ""`, "modem[1].pin",
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
	for _, want := range []string{"sms.reassembly_timeout", "sms.national_languages", "klingon", "xform.port", `xform.form[0].id = "1bad"`,
		"xform.form[0].fields", `xform.form[1].prefix = "vs": is used by another form`, "xform.form[1].fields", "xform.openrosa.url"} {
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
		"line 2: log_level: incompatible types",
		"line 4: mqtt.listen: incompatible types",
		"line 5: mqtt.allow_anonymous: incompatible types",
		`line 6: unknown key "mqtt.prt"`,
		"line 9: modem.baud: incompatible types",
		`line 10: modem.command_timeout: not a duration`,
		`gateway_id = "a/b": must be one MQTT topic level`,
		`modem[0].type = "usb"`,
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
