package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

func auditOps(t *testing.T, h *bridge.Router) []string {
	t.Helper()
	log, err := h.AuditLog(context.Background(), bridge.AuditQuery{Since: time.Time{}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range log {
		out = append(out, strings.Join(strings.Fields(e.Op+" "+e.Target+" "+e.Detail), " "))
	}
	return out
}

// TestAuditOnlyChanges: an edit that changes nothing, re-adding a tag or
// a member, and an empty import are not audited; an import says how many
// groups and memberships it made.
func TestAuditOnlyChanges(t *testing.T) {
	h, _ := newHub(t, &fake{})
	ctx := context.Background()
	if _, err := h.AddContact(ctx, bridge.ContactInput{Name: str("Amina"), Phones: strs("+15555550101"), Tags: strs("nurse")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddGroup(ctx, "staff"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := h.EditContact(ctx, "amina", bridge.ContactInput{Tags: strs("nurse"), Phones: strs("tel:+1 555 555 0101")}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.GroupMembers(ctx, "STAFF", []string{"Amina"}, nil); err != nil {
			t.Fatal(err)
		}
		if n, err := h.ImportContacts(ctx, strings.NewReader("name,phones\n\n")); err != nil || n != 0 {
			t.Fatal(n, err)
		}
	}
	if n, err := h.ImportContacts(ctx, strings.NewReader("name,phones,groups\nBaraka,+15555550102,staff;drivers\nChausiku,+15555550103,drivers\n")); err != nil || n != 2 {
		t.Fatal(n, err)
	}
	want := []string{"contact/add 1 Amina", "group/add staff", "group/members staff added Amina",
		"contact/import 2 contacts, 1 group created, 3 memberships"}
	if got := auditOps(t, h); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audited:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestContactIDsNotReused: a deleted contact's id is not given to the
// next one (it was: add A → 2, rm, add B → 2).
func TestContactIDsNotReused(t *testing.T) {
	h, _ := newHub(t, &fake{})
	ctx := context.Background()
	var ids []int64
	for i, name := range []string{"Amina", "Baraka", "Chausiku"} {
		r, err := h.AddContact(ctx, bridge.ContactInput{Name: str(name), Phones: strs(fmt.Sprintf("+1555555010%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Contact.ID)
		if name != "Amina" {
			if _, err := h.RemoveContact(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ids[2] == ids[1] || ids[2] < ids[1] {
		t.Errorf("ids %v: a deleted contact's id was given again", ids)
	}
}

// TestContactNamesFold: names are one name whatever their case in any
// alphabet ("Zoë Ñúñez 王" and "ZOË ÑÚÑEZ 王" coexisted), and a contact is
// found by any case of its name.
func TestContactNamesFold(t *testing.T) {
	h, _ := newHub(t, &fake{})
	ctx := context.Background()
	if _, err := h.AddContact(ctx, bridge.ContactInput{Name: str("Zoë Ñúñez 王"), Phones: strs("+15555550101")}); err != nil {
		t.Fatal(err)
	}
	_, err := h.AddContact(ctx, bridge.ContactInput{Name: str("ZOË ÑÚÑEZ 王"), Phones: strs("+15555550102")})
	if !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), `a contact has that name already ("Zoë Ñúñez 王")`) {
		t.Errorf("a name in another case: %v", err)
	}
	for _, ref := range []string{"ZOË ÑÚÑEZ 王", "zoë ñúñez 王"} {
		if c, err := h.ShowContact(ctx, ref); err != nil || c.Phones[0] != "+15555550101" {
			t.Errorf("show %q: %+v %v", ref, c, err)
		}
	}
	if _, err := h.AddContact(ctx, bridge.ContactInput{Name: str("ΟΔΟΣ"), Phones: strs("+15555550103")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddContact(ctx, bridge.ContactInput{Name: str("οδος"), Phones: strs("+15555550104")}); !errors.Is(err, store.ErrExists) {
		t.Errorf("οδος beside ΟΔΟΣ: %v", err)
	}
}

// TestImportLimitAndPages: an import of more rows than the bound is
// refused naming it, nothing imported; contacts are listed a page at a
// time with a cursor.
func TestImportLimitAndPages(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.MaxImportRows = 5
	ctx := context.Background()
	csv := func(n int) string {
		var b strings.Builder
		b.WriteString("name,phones\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "P%02d,+1555555%04d\n", i, i)
		}
		return b.String()
	}
	_, err := h.ImportContacts(ctx, strings.NewReader(csv(6)))
	if !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), "line 7: more than 5 contacts: import at most 5 at a time") {
		t.Errorf("6 rows: %v", err)
	}
	if n, err := h.ImportContacts(ctx, strings.NewReader(csv(5))); err != nil || n != 5 {
		t.Fatal(n, err)
	}
	var names []string
	cursor := ""
	for pages := 0; ; pages++ {
		p, err := h.ContactsPage(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range p.Contacts {
			names = append(names, c.Name)
		}
		if p.Next == "" {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		cursor = p.Next
	}
	if got := strings.Join(names, ","); got != "P00,P01,P02,P03,P04" {
		t.Errorf("pages gave %s", got)
	}
	if p, err := h.ContactsPage(ctx, "", 0); err != nil || len(p.Contacts) != 5 || p.Next != "" {
		t.Errorf("default page: %+v %v", p, err)
	}
	if _, err := h.ContactsPage(ctx, "garbage!", 2); !errors.Is(err, bridge.ErrInvalid) {
		t.Errorf("a bad cursor: %v", err)
	}
	if _, err := h.ContactsPage(ctx, "", 1001); !errors.Is(err, bridge.ErrInvalid) {
		t.Errorf("limit 1001: %v", err)
	}
}

// TestCSVGuardsAndEncodings: the export guards cells a spreadsheet would
// run as formulas (=HYPERLINK(…) was written as it was) and an import
// takes the guard off again; a Windows-1252 or UTF-16 file is refused
// as not UTF-8 (it was "control characters are not allowed"); a group
// name with a letter outside ASCII names the letter, not a byte of it.
func TestCSVGuardsAndEncodings(t *testing.T) {
	h, _ := newHub(t, &fake{})
	ctx := context.Background()
	if _, err := h.AddContact(ctx, bridge.ContactInput{Name: str(`=HYPERLINK("http://evil.example/","x")`), Phones: strs("+15555550101"),
		Notes: str("@SUM(1)"), Tags: strs("-x")}); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := h.ExportContacts(ctx, &out); err != nil {
		t.Fatal(err)
	}
	want := "name,phones,email,xmpp,language,tags,notes,groups\n" + `"'=HYPERLINK(""http://evil.example/"",""x"")",'+15555550101,,,,'-x,'@SUM(1),` + "\n"
	if out.String() != want {
		t.Errorf("export:\n%s\nwant:\n%s", out.String(), want)
	}
	h2, _ := newHub(t, &fake{})
	if n, err := h2.ImportContacts(ctx, strings.NewReader(out.String())); err != nil || n != 1 {
		t.Fatal(n, err)
	}
	if c, err := h2.ShowContact(ctx, "1"); err != nil || c.Name != `=HYPERLINK("http://evil.example/","x")` || c.Phones[0] != "+15555550101" || c.Notes != "@SUM(1)" || c.Tags[0] != "-x" {
		t.Errorf("the export imported again: %+v %v", c, err)
	}
	for name, b := range map[string][]byte{
		"Windows-1252":     []byte("name,phones\nJos\xe9,+15555550102\n"),
		"UTF-16LE":         append([]byte{0xff, 0xfe}, []byte("n\x00a\x00m\x00e\x00")...),
		"UTF-16 (no BOM)":  []byte("n\x00a\x00m\x00e\x00,\x00"),
		"UTF-16BE, no BOM": []byte("\x00n\x00a\x00m\x00e"),
	} {
		_, err := h.ImportContacts(ctx, strings.NewReader(string(b)))
		if !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), "save it as CSV UTF-8") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := h.ImportContacts(ctx, strings.NewReader("name,phones\nJos\xe9,+15555550102\n")); err == nil || !strings.Contains(err.Error(), "line 2, character 4 is the byte 0xE9") {
		t.Errorf("Windows-1252: %v", err)
	}
	if _, err := h.AddGroup(ctx, "wärd"); err == nil || !strings.Contains(err.Error(), `character 'ä' at 1 is not allowed in a name (only ASCII letters`) {
		t.Errorf("group wärd: %v", err)
	}
}

// TestMarkAuditsChanges: marking a message read again, or with a tag it
// has, is no change and is not audited.
func TestMarkAuditsChanges(t *testing.T) {
	h, _ := newHub(t, &fake{})
	ctx := context.Background()
	m := &store.Message{Direction: store.In, Peer: "+15555550100", Source: "sms"}
	if err := h.Store.Update(ctx, func(tx *store.Tx) error { return tx.InsertMessage(m) }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := h.MarkMessage(ctx, m.ID, store.Mark{Read: true}, "desk"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.MarkMessage(ctx, m.ID, store.Mark{Tag: "x"}, "desk"); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"mark " + m.ID + " read", "mark " + m.ID + " tag x"}
	if got := auditOps(t, h); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audited:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
