package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestContactsGroupSend: contacts and groups by the CLI, and a send to a
// group of contacts over SMS and email: the echo subscriber gets its SMS
// (and answers), the relay gets the mail, a member without an email is
// warned about when added and named in the send's note, and the send goes
// ahead; the config's [groups] keep working beside them.
func TestContactsGroupSend(t *testing.T) {
	r := newRelay(t)
	r.start()
	g, _ := emailGateway(t, fmt.Sprintf("smtp = \"smtp://%s\"\n[groups]\nlegacy = [\"+15555550100\"]\n", r.addr))
	g.start()
	run := func(want int, args ...string) (string, string) {
		t.Helper()
		out, errs, code := g.cli(args...)
		if code != want {
			t.Fatalf("outpost %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errs)
		}
		return out, errs
	}
	out, errs := run(0, "contact", "add", "Echo", "--phone", "+1 555 555 0100", "--email", "echo@example.org", "--tag", "test", "--json")
	var added struct {
		Contact struct {
			ID     int64
			Phones []string
		}
		Warnings []string
	}
	if err := json.Unmarshal([]byte(out), &added); err != nil || !slices.Equal(added.Contact.Phones, []string{"+15555550100"}) || errs != "" {
		t.Fatalf("contact add: %v %s %s", err, out, errs)
	}
	_, errs = run(0, "contact", "add", "Nurse", "--phone", "+15555550101")
	if !strings.Contains(errs, "warning: Nurse has no email") {
		t.Errorf("contact add without an email: stderr %q", errs)
	}
	// Bad input: exit 1 naming the field; a wrong call: exit 2.
	if _, errs = run(1, "contact", "add", "Bad", "--phone", "12"); !strings.Contains(errs, "--phone bad phone number") {
		t.Errorf("bad phone: %q", errs)
	}
	if _, errs = run(1, "contact", "add", "Bad", "--phone", "+15555550102", "--email", "not-mail"); !strings.Contains(errs, `"email": mailto:not-mail: not an email address`) {
		t.Errorf("bad email: %q", errs)
	}
	if _, errs = run(1, "contact", "add", "Other", "--phone", "+15555550101"); !strings.Contains(errs, `"phones": +15555550101 is already Nurse's number`) {
		t.Errorf("taken number: %q", errs)
	}
	run(2, "contact", "add")
	run(2, "contact", "frobnicate")
	run(2, "group", "members")
	run(2, "contact", "edit", "Nurse")
	if _, errs = run(1, "contact", "show", "Nobody"); !strings.Contains(errs, `no contact "Nobody"`) {
		t.Errorf("show Nobody: %q", errs)
	}

	run(0, "group", "add", "staff")
	if _, errs = run(1, "group", "add", "legacy"); !strings.Contains(errs, "config's [groups]") {
		t.Errorf("a config group's name: %q", errs)
	}
	_, errs = run(0, "group", "members", "staff", "--add", "Echo", "--add", "Nurse")
	if !strings.Contains(errs, "warning: Nurse has no email") || strings.Contains(errs, "Echo has") {
		t.Errorf("group members --add: stderr %q", errs)
	}
	out, _ = run(0, "group", "list")
	if !regexp.MustCompile(`legacy\s+1\s+config`).MatchString(out) || !regexp.MustCompile(`staff\s+2\s+contacts`).MatchString(out) {
		t.Errorf("group list:\n%s", out)
	}

	// The send: SMS to both numbers, mail to the one email.
	out, errs = run(0, "send", "--to", "group:staff", "--text", "staff meeting at 3", "--channels", "sms,email")
	if !strings.Contains(errs, "note: group staff: 1 member has no email: Nurse") {
		t.Errorf("send: stderr %q", errs)
	}
	id := strings.TrimSpace(out)
	g.waitEcho("staff meeting at 3")
	m, body := r.waitMail(1)
	if to := m.Header.Get("X-Envelope-To"); to != "echo@example.org" || body != "staff meeting at 3" {
		t.Errorf("mail to %q: %q", to, body)
	}
	s := g.show(id)
	var to []string
	for _, d := range s.Deliveries {
		to = append(to, d.Recipient)
	}
	slices.Sort(to)
	if want := []string{"+15555550100", "+15555550101", "echo@example.org"}; !slices.Equal(to, want) {
		t.Errorf("deliveries %v, want %v", to, want)
	}
	// The config's group still sends (read as it is).
	if out, errs = run(0, "send", "--to", "group:legacy", "--text", "from the config group"); errs != "" {
		t.Errorf("config group send: %q", errs)
	}
	g.waitEcho("from the config group")

	// Changes, show, list, removal.
	run(0, "contact", "edit", "Nurse", "--email", "nurse@example.org", "--language", "sw")
	out, _ = run(0, "contact", "show", "nurse")
	if !strings.Contains(out, "nurse@example.org") || !strings.Contains(out, "language: sw") || !strings.Contains(out, "groups:   staff") {
		t.Errorf("show after edit:\n%s", out)
	}
	run(0, "group", "members", "staff", "--rm", "Nurse")
	out, _ = run(0, "group", "members", "staff", "--json")
	if !strings.Contains(out, `"members": 1`) {
		t.Errorf("members after rm: %s", out)
	}
	run(0, "contact", "rm", "Nurse")

	// CSV: a bad line imports nothing and is named; a good file imports.
	bad := filepath.Join(g.dir, "bad.csv")
	os.WriteFile(bad, []byte("name,phones,email,groups\nAsha,+15555550110,,field\nBaraka,0712 345,,field\n"), 0o600)
	if _, errs = run(1, "contact", "import", bad); !strings.Contains(errs, `line 3: "phones": "0712 345"`) || !strings.Contains(errs, "nothing was imported") {
		t.Errorf("bad import: %q", errs)
	}
	out, _ = run(0, "contact", "list", "--json")
	var list struct{ Contacts []struct{ Name string } }
	json.Unmarshal([]byte(out), &list)
	if len(list.Contacts) != 1 {
		t.Errorf("after a failed import: %s", out)
	}
	good := filepath.Join(g.dir, "good.csv")
	os.WriteFile(good, []byte("name,phones,email,groups\nAsha,+15555550110,,field\nBaraka,+254 712 345 678,baraka@example.org,field;staff\n"), 0o600)
	if out, _ = run(0, "contact", "import", good); !strings.Contains(out, "imported 2 contacts") {
		t.Errorf("import: %q", out)
	}
	// MQTT: the same operations on admin/<op>, through the daemon.
	c, got := g.subscribe("admin-app")
	in := &topics{t: t, got: got}
	publishJSON(t, c, "outpost/gw1/admin/group/members", `{"name": "field", "add": ["Echo"]}`)
	ar := in.next("admin/group/members/reply", func(topic string) bool { return topic == "outpost/gw1/admin/group/members/reply" })
	if ar["ok"] != true || !strings.Contains(fmt.Sprint(ar["result"]), "Echo") {
		t.Errorf("admin/group/members: %v", ar)
	}
	publishJSON(t, c, "outpost/gw1/admin/contact/add", `{"name": "Fatuma", "phones": ["+15555550100"]}`)
	ar = in.next("admin/contact/add/reply", func(topic string) bool { return topic == "outpost/gw1/admin/contact/add/reply" })
	if ar["ok"] != false || !strings.Contains(fmt.Sprint(ar["error"]), `"phones": +15555550100 is already Echo's number`) {
		t.Errorf("admin/contact/add of a taken number: %v", ar)
	}
	run(0, "group", "members", "field", "--rm", "Echo")
	out, _ = run(0, "contact", "export")
	want := "name,phones,email,xmpp,language,tags,notes,groups\n" +
		"Asha,'+15555550110,,,,,,field\n" +
		"Baraka,'+254712345678,baraka@example.org,,,,,field;staff\n" +
		"Echo,'+15555550100,echo@example.org,,,test,,staff\n"
	if out != want {
		t.Errorf("export:\n%s\nwant:\n%s", out, want)
	}
}
