package bridge_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/store"
)

func str(s string) *string       { return &s }
func strs(s ...string) *[]string { return &s }

// TestContacts: a contact is added with its numbers normalised (E.164),
// changed, found by id or name, refused when a name or an address is
// another's (naming the field and the contact), and removed; bad input
// names the field.
func TestContacts(t *testing.T) {
	h, _ := newHub(t, &fake{})
	ctx := context.Background()
	res, err := h.AddContact(ctx, bridge.ContactInput{Name: str("Amina"), Phones: strs("tel:+1 555-555-0101", "0015555550102"), Email: str("amina@example.org"), Tags: strs("nurse")})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Contact.Phones; !slices.Equal(got, []string{"+15555550101", "+15555550102"}) {
		t.Errorf("phones = %v", got)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings for a contact with a number and an email: %v", res.Warnings)
	}
	res, err = h.AddContact(ctx, bridge.ContactInput{Name: str("Baraka"), Phones: strs("+15555550103")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "Baraka has no email") {
		t.Errorf("warnings = %q, want Baraka has no email", res.Warnings)
	}
	for _, c := range []struct {
		in   bridge.ContactInput
		want string
		is   error
	}{
		{bridge.ContactInput{Phones: strs("+15555550109")}, `"name" is missing`, bridge.ErrInvalid},
		{bridge.ContactInput{Name: str("  ")}, `"name" is empty`, bridge.ErrInvalid},
		{bridge.ContactInput{Name: str("Chausiku")}, `has no address`, bridge.ErrInvalid},
		{bridge.ContactInput{Name: str("Chausiku"), Phones: strs("0712345678")}, `"phones": "0712345678": give the number in international form`, bridge.ErrInvalid},
		{bridge.ContactInput{Name: str("Chausiku"), Phones: strs("+1555x")}, `"phones": bad phone number`, bridge.ErrInvalid},
		{bridge.ContactInput{Name: str("Chausiku"), Email: str("not an address")}, `"email": mailto:not an address: not an email address`, bridge.ErrInvalid},
		{bridge.ContactInput{Name: str("Chausiku"), XMPP: str("@x")}, `"xmpp": `, bridge.ErrInvalid},
		{bridge.ContactInput{Name: str("Chausiku"), Phones: strs("+15555550102")}, `"phones": +15555550102 is already Amina's number`, store.ErrExists},
		{bridge.ContactInput{Name: str("Chausiku"), Email: str("AMINA@example.org")}, `"email": amina@example.org is already Amina's email`, store.ErrExists},
		{bridge.ContactInput{Name: str("amina"), Phones: strs("+15555550109")}, `"name" "amina": a contact has that name already`, store.ErrExists},
		{bridge.ContactInput{Name: str("Chausiku"), Phones: strs("+15555550109"), Tags: strs("a b")}, `"tags": "a b"`, bridge.ErrInvalid},
	} {
		_, err := h.AddContact(ctx, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.is) {
			t.Errorf("AddContact(%+v) = %v, want %q (%v)", c.in, err, c.want, c.is)
		}
	}
	// Edit by name: the fields given change, the others stay.
	res, err = h.EditContact(ctx, "baraka", bridge.ContactInput{Email: str("baraka@example.org"), Language: str("sw")})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Contact; c.Email != "baraka@example.org" || c.Language != "sw" || !slices.Equal(c.Phones, []string{"+15555550103"}) {
		t.Errorf("edited: %+v", c)
	}
	if _, err := h.EditContact(ctx, "Baraka", bridge.ContactInput{Phones: strs("+15555550101")}); !errors.Is(err, store.ErrExists) {
		t.Errorf("taking Amina's number: %v", err)
	}
	c, err := h.ShowContact(ctx, "1")
	if err != nil || c.Name != "Amina" {
		t.Fatalf("show 1 = %+v, %v", c, err)
	}
	if _, err := h.ShowContact(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("show nobody: %v", err)
	}
	if _, err := h.RemoveContact(ctx, "Amina"); err != nil {
		t.Fatal(err)
	}
	all, err := h.Contacts(ctx)
	if err != nil || len(all) != 1 || all[0].Name != "Baraka" {
		t.Fatalf("contacts = %+v, %v", all, err)
	}
	// Amina's number is free again.
	if _, err := h.AddContact(ctx, bridge.ContactInput{Name: str("Chausiku"), Phones: strs("+15555550101")}); err != nil {
		t.Errorf("a removed contact's number: %v", err)
	}
}

// TestGroups: groups of contacts, a member in several, a member added
// without an email warns and is added; the config's [groups] are listed,
// read only, and their names cannot be taken.
func TestGroups(t *testing.T) {
	h, _ := newHub(t, &fake{})
	h.Groups = map[string][]string{"nurses": {"+15555550190"}}
	ctx := context.Background()
	for _, in := range []bridge.ContactInput{
		{Name: str("Amina"), Phones: strs("+15555550101"), Email: str("amina@example.org")},
		{Name: str("Baraka"), Phones: strs("+15555550102")},
		{Name: str("Chausiku"), Email: str("chausiku@example.org")},
	} {
		if _, err := h.AddContact(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []string{"staff", "drivers"} {
		if _, err := h.AddGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.AddGroup(ctx, "Staff"); !errors.Is(err, store.ErrExists) {
		t.Errorf("a second staff: %v", err)
	}
	if _, err := h.AddGroup(ctx, "NURSES"); err == nil || !strings.Contains(err.Error(), "config's [groups]") {
		t.Errorf("a config group's name: %v", err)
	}
	if _, err := h.AddGroup(ctx, "bad name"); !errors.Is(err, bridge.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	res, err := h.GroupMembers(ctx, "staff", []string{"Amina", "Baraka", "Chausiku"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Group.Members != 3 {
		t.Errorf("staff has %d members", res.Group.Members)
	}
	warn := strings.Join(res.Warnings, "\n")
	if !strings.Contains(warn, "Baraka has no email") || !strings.Contains(warn, "Chausiku has no number") || strings.Contains(warn, "Amina") {
		t.Errorf("warnings:\n%s", warn)
	}
	if _, err := h.GroupMembers(ctx, "drivers", []string{"Baraka", "nobody"}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("adding nobody: %v", err)
	}
	if res, _ := h.GroupMembers(ctx, "drivers", nil, nil); res.Group.Members != 0 {
		t.Errorf("a failed change added %d members", res.Group.Members)
	}
	if _, err := h.GroupMembers(ctx, "drivers", []string{"Baraka"}, nil); err != nil {
		t.Fatal(err)
	}
	c, _ := h.ShowContact(ctx, "Baraka")
	if !slices.Equal(c.Groups, []string{"drivers", "staff"}) {
		t.Errorf("Baraka's groups = %v", c.Groups)
	}
	if _, err := h.GroupMembers(ctx, "nurses", []string{"Baraka"}, nil); err == nil || !strings.Contains(err.Error(), "config's [groups]") {
		t.Errorf("changing a config group: %v", err)
	}
	gs, err := h.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range gs {
		names = append(names, g.Name+"/"+g.Source)
	}
	if want := []string{"drivers/contacts", "nurses/config", "staff/contacts"}; !slices.Equal(names, want) {
		t.Errorf("groups = %v, want %v", names, want)
	}
	if res, err := h.GroupMembers(ctx, "staff", nil, []string{"Amina"}); err != nil || res.Group.Members != 2 {
		t.Errorf("rm Amina: %+v, %v", res, err)
	}
	if _, err := h.RemoveGroup(ctx, "staff"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.RemoveGroup(ctx, "staff"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removing it again: %v", err)
	}
	if c, _ := h.ShowContact(ctx, "Baraka"); !slices.Equal(c.Groups, []string{"drivers"}) {
		t.Errorf("Baraka's groups after staff went = %v", c.Groups)
	}
}

// TestGroupSendChannels: a send to a group of contacts goes to each
// member on the channels asked (default SMS), one delivery each, a number
// in two groups once; the notes name the members a channel does not
// reach; a group no one in can be reached is refused.
func TestGroupSendChannels(t *testing.T) {
	h, start := newHub(t, &fake{})
	h.Add(&mailbox{hook{got: make(chan store.Delivery, 100)}})
	h.Groups = map[string][]string{"legacy": {"+15555550190"}}
	ctx := context.Background()
	for _, in := range []bridge.ContactInput{
		{Name: str("Amina"), Phones: strs("+15555550101", "+15555550111"), Email: str("amina@example.org")},
		{Name: str("Baraka"), Phones: strs("+15555550102")},
		{Name: str("Chausiku"), Email: str("chausiku@example.org")},
		{Name: str("Dalia"), XMPP: str("dalia@example.org")},
	} {
		if _, err := h.AddContact(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	for g, ms := range map[string][]string{"staff": {"Amina", "Baraka", "Chausiku"}, "drivers": {"Baraka"}, "far": {"Dalia"}} {
		if _, err := h.AddGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		if _, err := h.GroupMembers(ctx, g, ms, nil); err != nil {
			t.Fatal(err)
		}
	}
	start()
	recipients := func(id string) []string {
		v, err := h.Message(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range v.Deliveries {
			out = append(out, d.Connector+" "+d.Recipient)
		}
		slices.Sort(out)
		return out
	}
	id := submitReq(t, h, bridge.SendRequest{To: []string{"group:staff", "group:drivers"}, Text: "meeting at 3"})
	if got, want := recipients(id), []string{"sms +15555550101", "sms +15555550102"}; !slices.Equal(got, want) {
		t.Errorf("default channel: deliveries %v, want %v", got, want)
	}
	req := bridge.SendRequest{To: []string{"group:staff"}, Text: "meeting at 3", Channels: []string{"sms", "email"}}
	id = submitReq(t, h, req)
	want := []string{"email amina@example.org", "email chausiku@example.org", "sms +15555550101", "sms +15555550102"}
	if got := recipients(id); !slices.Equal(got, want) {
		t.Errorf("sms and email: deliveries %v, want %v", got, want)
	}
	notes := h.GroupNotes(req.To, req.Channels...)
	wantNotes := []string{"group staff: 1 member has no number: Chausiku", "group staff: 1 member has no email: Baraka"}
	if !slices.Equal(notes, wantNotes) {
		t.Errorf("notes = %q, want %q", notes, wantNotes)
	}
	v, _ := h.Message(ctx, id)
	if !strings.Contains(details(v), "group staff: 1 member has no email: Baraka") {
		t.Errorf("history lacks the note:\n%s", details(v))
	}
	// Dalia has no number and no email: named once more as reached on
	// no channel asked; the send goes ahead for the others.
	if _, err := h.GroupMembers(ctx, "staff", []string{"Dalia"}, nil); err != nil {
		t.Fatal(err)
	}
	notes = h.GroupNotes(req.To, req.Channels...)
	wantNotes = []string{"group staff: 2 members have no number: Chausiku, Dalia", "group staff: 2 members have no email: Baraka, Dalia",
		"group staff: 1 member has no address on any channel asked (sms, email), not sent to: Dalia"}
	if !slices.Equal(notes, wantNotes) {
		t.Errorf("notes = %q, want %q", notes, wantNotes)
	}
	if got := recipients(submitReq(t, h, req)); !slices.Equal(got, want) {
		t.Errorf("with Dalia: deliveries %v, want %v", got, want)
	}
	// The config's groups are read as they are: their numbers, by SMS.
	legacy := bridge.SendRequest{To: []string{"group:legacy", "group:staff"}, Text: "x", Channels: []string{"sms", "email"}}
	if got := recipients(submitReq(t, h, legacy)); !slices.Equal(got, append(slices.Clone(want), "sms +15555550190")) {
		t.Errorf("config group and staff: deliveries %v", got)
	}
	for _, c := range []struct {
		req  bridge.SendRequest
		want string
	}{
		{bridge.SendRequest{To: []string{"group:far"}, Text: "x"}, `group "far": no member can be reached on sms`},
		{bridge.SendRequest{To: []string{"group:staff"}, Text: "x", Channels: []string{"fax"}}, `"channels": "fax" is not a channel`},
		{bridge.SendRequest{To: []string{"group:nobody"}, Text: "x"}, `unknown group "nobody"`},
		{bridge.SendRequest{To: []string{"group:legacy"}, Text: "x", Channels: []string{"email"}}, `group "legacy" is the config's ([groups]): numbers, sent by SMS, and "channels" does not ask for sms`},
	} {
		c.req.Source = "test"
		if _, err := h.Submit(ctx, c.req); err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, bridge.ErrInvalid) {
			t.Errorf("Submit(%v) = %v, want %q", c.req.To, err, c.want)
		}
	}
}

// TestImportContacts: a CSV file is imported whole, with groups; a file
// with a bad line (or a number another contact has) imports nothing and
// names the line; export reads back the same.
func TestImportContacts(t *testing.T) {
	h, _ := newHub(t, &fake{})
	ctx := context.Background()
	good := "name,phones,email,groups,tags\n" +
		"Amina,+1 555 555 0101;+15555550111,amina@example.org,staff;nurses,lead\n" +
		"\"Baraka, Jr\",+15555550102,,staff,\n"
	n, err := h.ImportContacts(ctx, strings.NewReader(good))
	if err != nil || n != 2 {
		t.Fatalf("import = %d, %v", n, err)
	}
	for _, c := range []struct{ csv, want string }{
		{"name,phones\nChausiku,+15555550103\nDalia,07123\nEli,+15555550105\n", `line 3: "phones": "07123": give the number in international form`},
		{"name,phones\nChausiku,+15555550103\nDalia,+15555550101\n", `line 3: "phones": +15555550101 is already Amina's number`},
		{"name,phones\nChausiku,+15555550103\nchausiku,+15555550104\n", `line 3: "name" "chausiku": a contact has that name already`},
		{"name,fax\nChausiku,+15555550103\n", `line 1: column 2 "fax" is not a column`},
		{"name,phones\nChausiku,+15555550103,x\n", `line 2: 3 fields`},
		{"name,phones\nChausiku,+15555550103\n,+15555550104\n", `line 3: "name" is empty`},
	} {
		_, err := h.ImportContacts(ctx, strings.NewReader(c.csv))
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, bridge.ErrInvalid) {
			t.Errorf("import %q = %v, want %q", c.csv, err, c.want)
		}
	}
	all, _ := h.Contacts(ctx)
	if len(all) != 2 {
		t.Fatalf("a failed import left %d contacts, want 2: %+v", len(all), all)
	}
	var out strings.Builder
	if err := h.ExportContacts(ctx, &out); err != nil {
		t.Fatal(err)
	}
	want := "name,phones,email,xmpp,language,tags,notes,groups\n" +
		"Amina,'+15555550101;+15555550111,amina@example.org,,,lead,,nurses;staff\n" +
		"\"Baraka, Jr\",'+15555550102,,,,,,staff\n"
	if out.String() != want {
		t.Errorf("export:\n%s\nwant:\n%s", out.String(), want)
	}
}
