package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/pdu"
)

// Issue 10, sections 7 (local security) and 8 (disk full, corruption).

// TestDataFolderIsPrivate: the data folder is 0700 and the database, WAL
// and shared-memory files 0600, also when they existed before with wider
// modes (a /var/lib/outpost made 0755, a database from an older version).
func TestDataFolderIsPrivate(t *testing.T) {
	g := newGateway(t, "")
	data := filepath.Join(g.dir, "data")
	// A folder that existed, as /var/lib/outpost usually does.
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	g.start()
	g.waitDelivered(g.send("private"))
	check := func(when string) {
		t.Helper()
		for _, f := range []struct {
			name string
			mode os.FileMode
		}{{"", 0o700}, {"outpost.db", 0o600}, {"outpost.db-wal", 0o600}, {"outpost.db-shm", 0o600}, {"outpost.lock", 0o600}} {
			fi, err := os.Stat(filepath.Join(data, f.name))
			if err != nil {
				t.Errorf("%s: %v", when, err)
				continue
			}
			if fi.Mode().Perm() != f.mode {
				t.Errorf("%s: %s is %o, want %o", when, filepath.Join("data", f.name), fi.Mode().Perm(), f.mode)
			}
		}
	}
	check("first start")
	g.d.stop()
	// As an older version (or another umask) would have left them.
	os.Chmod(data, 0o755)
	for _, f := range []string{"outpost.db", "outpost.db-wal", "outpost.db-shm", "outpost.lock"} {
		os.Chmod(filepath.Join(data, f), 0o644)
	}
	g.start()
	check("restart over 0755/0644")
}

// TestControlCharactersEscaped: an SMS whose text and sender carry
// terminal escapes (set the window title, clear the screen) is shown by
// inbox and show with the escapes visible and inert; --json keeps the
// text as it came.
func TestControlCharactersEscaped(t *testing.T) {
	dir := t.TempDir()
	device, sim := controlledSim(t, dir)
	g := newGateway(t, device)
	g.start()
	evil := "\x1b]0;pwned\x07\x1b[2Jhi\u202eexe.txt"
	for _, p := range phoneParts(t, "+15555550111", pdu.Outgoing{Text: evil}, 7) {
		sim.deliver(t, p)
	}
	var id string
	waitFor(t, "the message in the inbox", 20*time.Second, func() bool {
		for _, m := range g.fromInbox("+15555550111") {
			id = m.ID
		}
		return id != ""
	})
	out, _, code := g.cli("inbox")
	if code != 0 || bytes.ContainsAny([]byte(out), "\x1b\x07") || strings.Contains(out, "\u202e") {
		t.Errorf("inbox prints raw control characters: %q", out)
	}
	if !strings.Contains(out, `\x1b]0;pwned\x07\x1b[2Jhi\u202eexe.txt`) {
		t.Errorf("inbox does not show the escapes: %q", out)
	}
	out, _, _ = g.cli("show", id)
	if bytes.ContainsAny([]byte(out), "\x1b\x07") || !strings.Contains(out, `\x1b[2J`) {
		t.Errorf("show prints raw control characters: %q", out)
	}
	out, _, _ = g.cli("show", id, "--json")
	if !strings.Contains(out, `\u001b]0;pwned\u0007`) {
		t.Errorf("--json does not carry the text as it came: %q", out)
	}
	// The codec commands show what a PDU holds the same way, and a line
	// break in a text cannot fake a line of show's output.
	parts := phoneParts(t, "+15555550111", pdu.Outgoing{Text: evil + "\nstate:     delivered"}, 9)
	out, _, code = cli(t, dir, "decode", "pdu", parts[0])
	if code != 0 || bytes.ContainsAny([]byte(out), "\x1b\x07") || !strings.Contains(out, `\x1b[2J`) || strings.Contains(out, "\nstate:") {
		t.Errorf("decode pdu prints raw control characters or line breaks: %q", out)
	}
	cmd := exec.Command(binary, "decode", "join")
	cmd.Stdin = strings.NewReader(parts[0] + "\n")
	b, _ := cmd.Output()
	if bytes.ContainsAny(b, "\x1b\x07") || !strings.Contains(string(b), `\x1b[2J`) {
		t.Errorf("decode join prints raw control characters: %q", b)
	}
	lf := submitText(t, g, "line one\nstate:     faked")
	out, _, _ = g.cli("show", lf)
	if strings.Contains(out, "\nstate:     faked") {
		t.Errorf("a text's line break fakes a line of show's output:\n%s", out)
	}
}

// submitText queues a text (which may hold line breaks) through the CLI.
func submitText(t *testing.T, g *gateway, text string) string {
	t.Helper()
	out, errs, code := g.cli("send", "--to", "+15555550100", "--text", text)
	if code != 0 {
		t.Fatalf("send: %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

// TestCorruptDatabaseReported: a damaged database, or a file that is not
// one, stops the start with exit 1, the path and what to do (before, a
// damaged page was found by whichever write touched it).
func TestCorruptDatabaseReported(t *testing.T) {
	g := newGateway(t, "")
	g.start()
	for i := range 20 {
		g.send(fmt.Sprintf("fill %d %s", i, strings.Repeat("x", 100)))
	}
	g.d.stop()
	db := filepath.Join(g.dir, "data", "outpost.db")
	b, err := os.ReadFile(db)
	if err != nil || len(b) < 3*4096 {
		t.Fatalf("database: %d bytes, %v", len(b), err)
	}
	// Garbage over the second page (a b-tree page), the header intact.
	copy(b[4096:8192], bytes.Repeat([]byte{0xA5, 0x5A, 0x00, 0xFF}, 1024))
	os.WriteFile(db, b, 0o600)
	os.Remove(db + "-wal")
	os.Remove(db + "-shm")
	p := start(t, g.dir, nil, "run", "--config", g.config)
	<-p.done
	out := p.out.String()
	if p.err == nil || !strings.Contains(out, "database is damaged: "+db) || !strings.Contains(out, "keep a copy") || strings.Contains(out, "outpost running") {
		t.Fatalf("damaged database: %v\n%s", p.err, out)
	}
	// Not a database at all.
	os.WriteFile(db, bytes.Repeat([]byte("not a database "), 1000), 0o600)
	p = start(t, g.dir, nil, "run", "--config", g.config)
	<-p.done
	if out := p.out.String(); p.err == nil || !strings.Contains(out, "database is damaged") || !strings.Contains(out, "not a database") {
		t.Fatalf("not a database: %v\n%s", p.err, out)
	}
}

// fill writes a file until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			return
		}
	}
}

// TestDiskFull: with no space left, the daemon does not start and says
// so with the folder; once running, a send that cannot be committed is an
// error the sender sees (nothing acknowledged, no half-stored message)
// and the daemon goes on; when space returns, sends work again.
func TestDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, "size=3m")
	g := newGateway(t, "")
	cfg, _ := os.ReadFile(g.config)
	data := filepath.Join(mnt, "data")
	cfg = bytes.Replace(cfg, []byte(fmt.Sprintf("data_dir = %q", filepath.Join(g.dir, "data"))), []byte(fmt.Sprintf("data_dir = %q", data)), 1)
	writeConfig(t, g.config, string(cfg))

	filler := filepath.Join(mnt, "filler")
	fill(t, filler)
	runFails(t, g.dir, string(cfg), "no space left on "+data)
	os.Remove(filler)
	os.RemoveAll(data)

	g.start()
	g.waitDelivered(g.send("before"))
	fill(t, filler)
	var refused string
	stored := 0
	for i := 0; i < 300 && refused == ""; i++ {
		_, errs, code := g.cli("send", "--to", "+15555550100", "--text", fmt.Sprintf("while full %d %s", i, strings.Repeat("y", 150)))
		switch code {
		case 0:
			stored++
		default:
			refused = errs
		}
	}
	if !strings.Contains(refused, "no space left on "+data) {
		t.Fatalf("after %d sends on a full disk, none was refused with the folder named: %q", stored, refused)
	}
	if _, errs, code := g.cli("status"); code != 0 {
		t.Fatalf("the daemon stopped answering on a full disk: %s", errs)
	}
	os.Remove(filler)
	id := g.send("after")
	g.waitDelivered(id)
	select {
	case <-g.d.done:
		t.Fatalf("the daemon exited:\n%s", g.d.out.String())
	default:
	}

	// A database that exists, on a disk that filled while the daemon
	// was stopped: "no space left", not "damaged" with advice that would
	// throw the messages away; with room again it starts with them.
	g.d.stop()
	fill(t, filler)
	out := runFails(t, g.dir, string(cfg), "no space left on "+data)
	if strings.Contains(out, "damaged") {
		t.Errorf("a full disk reported as a damaged database:\n%s", out)
	}
	os.Remove(filler)
	g.start()
	if s := g.show(id); s.State != "delivered" {
		t.Errorf("after the disk was freed: %+v", s)
	}
}
