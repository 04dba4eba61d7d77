package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCLIClearsAndFilters: contact edit --phone "" and --tag "" clear
// (they did nothing, exit 0), and --phone "" on a contact with no other
// address is refused; messages --state bogus and a tag with a space
// exit 2 naming the valid states (they listed nothing, exit 0), and
// --number finds a number written as sends take it (tel:…, spaces);
// audit --since bogus exits 2 like every malformed flag value.
func TestCLIClearsAndFilters(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	run := func(want int, args ...string) (string, string) {
		t.Helper()
		out, errs, code := g.cli(args...)
		if code != want {
			t.Fatalf("outpost %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errs)
		}
		return out, errs
	}
	type contact struct {
		Phones []string
		Tags   []string
		Email  string
	}
	show := func(name string) contact {
		t.Helper()
		out, _ := run(0, "contact", "show", name, "--json")
		var c contact
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatalf("contact show: %v %s", err, out)
		}
		return c
	}
	run(0, "contact", "add", "Amina", "--phone", "+15555550101", "--email", "amina@example.org", "--tag", "nurse,driver")
	run(0, "contact", "edit", "Amina", "--tag", "")
	run(0, "contact", "edit", "Amina", "--phone", "")
	if c := show("Amina"); len(c.Phones) != 0 || len(c.Tags) != 0 || c.Email != "amina@example.org" {
		t.Errorf("after --phone \"\" --tag \"\": %+v", c)
	}
	run(0, "contact", "add", "Baraka", "--phone", "+15555550102")
	if _, errs := run(1, "contact", "edit", "Baraka", "--phone", ""); !strings.Contains(errs, "would have no address left") {
		t.Errorf("clearing the only address: %q", errs)
	}
	if c := show("Baraka"); !slices.Equal(c.Phones, []string{"+15555550102"}) {
		t.Errorf("Baraka after a refused edit: %+v", c)
	}

	id := g.send("hello")
	if _, errs := run(2, "messages", "--state", "bogus"); !strings.Contains(errs, `--state "bogus" is not a state: give one of complete, incomplete`) {
		t.Errorf("--state bogus: %q", errs)
	}
	if _, errs := run(2, "messages", "--tag", "two words"); !strings.Contains(errs, "a tag is one word") {
		t.Errorf("--tag with a space: %q", errs)
	}
	for _, n := range []string{"+15555550100", "tel:+15555550100", "+1 555 555 0100"} {
		if out, _ := run(0, "messages", "--out", "--number", n); !strings.Contains(out, id) {
			t.Errorf("--number %q: %s", n, out)
		}
	}
	if _, errs := run(2, "audit", "--since", "bogus"); !strings.Contains(errs, `--since "bogus"`) {
		t.Errorf("audit --since bogus: %q", errs)
	}

	// A stray quote crashed the import's handler: the CLI said "no
	// daemon is running". It is a bad line, and the daemon goes on.
	bad := filepath.Join(g.dir, "bad.csv")
	os.WriteFile(bad, []byte("name,phones\n\"Unclosed,+255700000009\n"), 0o600)
	if _, errs := run(1, "contact", "import", bad); !strings.Contains(errs, "line 2") || strings.Contains(errs, "no daemon") {
		t.Errorf("a stray quote: %q", errs)
	}
	run(0, "status")
}
