package bridge

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/outpost-sms/outpost/store"
)

// Contacts and groups (store/contacts.go, migration 0016). The operations
// are here, the same for every front end (HTTP /v1/contacts and
// /v1/groups, the CLI's contact and group commands, MQTT admin/contact/…
// and admin/group/…): bad input is ErrInvalid with the field named, an
// unknown contact or group store.ErrNotFound, a name or address another
// contact has store.ErrExists.

// Contact is a contact as the APIs show it.
type Contact struct {
	ID       int64    `json:"id"`
	Name     string   `json:"name"`
	Phones   []string `json:"phones"`
	Email    string   `json:"email,omitempty"`
	XMPP     string   `json:"xmpp,omitempty"`
	Language string   `json:"language,omitempty"`
	Tags     []string `json:"tags"`
	Notes    string   `json:"notes,omitempty"`
	Groups   []string `json:"groups"`
}

func contactView(c store.Contact) Contact {
	v := Contact{ID: c.ID, Name: c.Name, Phones: c.Phones, Email: c.Email, XMPP: c.XMPP, Language: c.Language, Tags: c.Tags, Notes: c.Notes, Groups: c.Groups}
	for _, p := range []*[]string{&v.Phones, &v.Tags, &v.Groups} {
		if *p == nil {
			*p = []string{}
		}
	}
	return v
}

// ContactInput is a contact to add, or the fields of one to change
// (absent fields are left as they are; an empty one clears it).
type ContactInput struct {
	Name     *string   `json:"name,omitempty"`
	Phones   *[]string `json:"phones,omitempty"`
	Email    *string   `json:"email,omitempty"`
	XMPP     *string   `json:"xmpp,omitempty"`
	Language *string   `json:"language,omitempty"`
	Tags     *[]string `json:"tags,omitempty"`
	Notes    *string   `json:"notes,omitempty"`
}

// ContactResult is what adding or changing a contact came to, with what
// it lacks to be reached (warnings, not errors).
type ContactResult struct {
	Contact  Contact  `json:"contact"`
	Warnings []string `json:"warnings,omitempty"`
}

// Group is a group as the APIs show it: a group of contacts (source
// "contacts"), or one of the config's [groups] (source "config", its
// numbers as listed there, read only).
type Group struct {
	Name    string    `json:"name"`
	Source  string    `json:"source"`
	Members int       `json:"members"`
	Numbers []string  `json:"numbers,omitempty"`
	List    []Contact `json:"contacts,omitempty"`
}

// GroupResult is a group's members after a change, with warnings for
// the members added that lack a number or an email.
type GroupResult struct {
	Group    Group    `json:"group"`
	Warnings []string `json:"warnings,omitempty"`
}

// Bounds of a contact's fields.
const (
	MaxContactName   = 100
	MaxContactPhones = 10
	MaxContactTags   = 20
	MaxContactNotes  = 2000
)

// GroupChannels are the channels a send to a group of contacts may ask
// for ("channels"), and the scheme of each.
var GroupChannels = map[string]string{"sms": SchemeTel, "email": SchemeMailto, "xmpp": SchemeXMPP}

type badInput struct{ msg string }

func (e badInput) Error() string        { return e.msg }
func (e badInput) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) error { return badInput{fmt.Sprintf(format, args...)} }

// NormalisePhone reads a contact's number as the router reads a tel:
// address (CanonicalPhone), in international form: "tel:+1 555-555-0100",
// "+1 (555) 555 0100" and "0015555550100" are "+15555550100", and with
// [sms] country_code "254", "0712 345678" is "+254712345678". A number
// without its country code is refused: a contact's number must be E.164.
func NormalisePhone(s string) (string, error) {
	a, err := canonTel(s, strings.TrimSpace(s))
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(a.Value, "+") {
		return "", fmt.Errorf("%q: give the number in international form, with its country code (+15555550100), or set [sms] country_code to read national numbers", s)
	}
	return a.Value, nil
}

// apply checks in and sets its fields on c; the error names the field.
func (in ContactInput) apply(c *store.Contact) error {
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		switch {
		case n == "":
			return invalid(`"name" is empty: give the contact's name`)
		case utf8.RuneCountInString(n) > MaxContactName:
			return invalid(`"name" has %d characters: at most %d`, utf8.RuneCountInString(n), MaxContactName)
		case !utf8.ValidString(n) || strings.ContainsFunc(n, isControl):
			return invalid(`"name" %q: control characters are not allowed`, n)
		case isDigits(n):
			return invalid(`"name" %q: a name may not be all digits (it would read as a contact's id)`, n)
		}
		c.Name = n
	}
	if in.Phones != nil {
		if len(*in.Phones) > MaxContactPhones {
			return invalid(`"phones": %d numbers, at most %d`, len(*in.Phones), MaxContactPhones)
		}
		c.Phones = nil
		for _, p := range *in.Phones {
			n, err := NormalisePhone(p)
			if err != nil {
				return invalid(`"phones": %v`, err)
			}
			if !slices.Contains(c.Phones, n) {
				c.Phones = append(c.Phones, n)
			}
		}
	}
	if in.Email != nil {
		c.Email = ""
		if e := strings.TrimSpace(*in.Email); e != "" {
			a, err := ParseAddress("mailto:" + strings.TrimPrefix(e, "mailto:"))
			if err != nil {
				return invalid(`"email": %v`, err)
			}
			c.Email = a.Value
		}
	}
	if in.XMPP != nil {
		c.XMPP = ""
		if j := strings.TrimSpace(*in.XMPP); j != "" {
			a, err := ParseAddress("xmpp:" + strings.TrimPrefix(j, "xmpp:"))
			if err != nil {
				return invalid(`"xmpp": %v`, err)
			}
			c.XMPP = a.Value
		}
	}
	if in.Language != nil {
		l := strings.TrimSpace(*in.Language)
		if len(l) > 35 || strings.ContainsFunc(l, func(r rune) bool {
			return !(r == '-' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z')
		}) {
			return invalid(`"language" %q: give a language tag such as "sw" or "fr-CD"`, l)
		}
		c.Language = l
	}
	if in.Tags != nil {
		if len(*in.Tags) > MaxContactTags {
			return invalid(`"tags": %d tags, at most %d`, len(*in.Tags), MaxContactTags)
		}
		c.Tags = nil
		for _, t := range *in.Tags {
			t = strings.TrimSpace(t)
			if err := checkName(t); err != nil {
				return invalid(`"tags": %q: %v`, t, err)
			}
			if !slices.Contains(c.Tags, t) {
				c.Tags = append(c.Tags, t)
			}
		}
	}
	if in.Notes != nil {
		n := *in.Notes
		switch {
		case utf8.RuneCountInString(n) > MaxContactNotes:
			return invalid(`"notes" has %d characters: at most %d`, utf8.RuneCountInString(n), MaxContactNotes)
		case !utf8.ValidString(n) || strings.ContainsFunc(n, func(r rune) bool { return isControl(r) && r != '\n' && r != '\t' }):
			return invalid(`"notes": control characters other than newline and tab are not allowed`)
		}
		c.Notes = n
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

func isDigits(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

// unreachable says what a contact lacks to be reached on each channel.
func unreachable(c store.Contact) []string {
	var out []string
	if len(c.Phones) == 0 {
		out = append(out, fmt.Sprintf("%s has no number: a group send by SMS does not reach them", c.Name))
	}
	if c.Email == "" {
		out = append(out, fmt.Sprintf("%s has no email: a group send by email does not reach them", c.Name))
	}
	return out
}

// findContact reads a contact by its id (all digits) or its name.
func findContact(tx *store.Tx, ref string) (store.Contact, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return store.Contact{}, invalid("no contact given: give its name or its id")
	}
	var c store.Contact
	var err error
	if isDigits(ref) {
		id, perr := strconv.ParseInt(ref, 10, 64)
		if perr != nil {
			return c, invalid("contact id %q is out of range", ref)
		}
		c, err = tx.Contact(id)
	} else {
		c, err = tx.ContactByName(ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return c, fmt.Errorf("no contact %q: %w", ref, store.ErrNotFound)
	}
	return c, err
}

// AddContact adds a contact. It needs a name and at least one address
// (a number, an email or an XMPP address).
func (h *Router) AddContact(ctx context.Context, in ContactInput) (ContactResult, error) {
	if in.Name == nil {
		return ContactResult{}, invalid(`"name" is missing: give the contact's name`)
	}
	var c store.Contact
	if err := in.apply(&c); err != nil {
		return ContactResult{}, err
	}
	if len(c.Phones) == 0 && c.Email == "" && c.XMPP == "" {
		return ContactResult{}, invalid(`contact %q has no address: give "phones", "email" or "xmpp"`, c.Name)
	}
	err := h.Store.Update(ctx, func(tx *store.Tx) error {
		if err := tx.SaveContact(&c); err != nil {
			return err
		}
		return h.auditCtx(ctx, tx, "contact/add", fmt.Sprint(c.ID), c.Name)
	})
	if err != nil {
		return ContactResult{}, err
	}
	return ContactResult{Contact: contactView(c), Warnings: unreachable(c)}, nil
}

// EditContact changes the fields in gives of the contact ref names (its
// id or its name).
func (h *Router) EditContact(ctx context.Context, ref string, in ContactInput) (ContactResult, error) {
	var c store.Contact
	err := h.Store.Update(ctx, func(tx *store.Tx) (err error) {
		if c, err = findContact(tx, ref); err != nil {
			return err
		}
		before := contactView(c)
		if err := in.apply(&c); err != nil {
			return err
		}
		if len(c.Phones) == 0 && c.Email == "" && c.XMPP == "" {
			return invalid(`contact %q would have no address left: keep one of "phones", "email" or "xmpp"`, c.Name)
		}
		if reflect.DeepEqual(before, contactView(c)) {
			return nil // nothing changed: nothing to write or audit
		}
		if err := tx.SaveContact(&c); err != nil {
			return err
		}
		return h.auditCtx(ctx, tx, "contact/edit", fmt.Sprint(c.ID), c.Name)
	})
	if err != nil {
		return ContactResult{}, err
	}
	return ContactResult{Contact: contactView(c), Warnings: unreachable(c)}, nil
}

// RemoveContact deletes a contact (and takes it out of its groups).
func (h *Router) RemoveContact(ctx context.Context, ref string) (Contact, error) {
	var c store.Contact
	err := h.Store.Update(ctx, func(tx *store.Tx) (err error) {
		if c, err = findContact(tx, ref); err != nil {
			return err
		}
		if err := tx.DeleteContact(c.ID); err != nil {
			return err
		}
		return h.auditCtx(ctx, tx, "contact/rm", fmt.Sprint(c.ID), c.Name)
	})
	return contactView(c), err
}

// ShowContact reads one contact by its id or name.
func (h *Router) ShowContact(ctx context.Context, ref string) (Contact, error) {
	var c store.Contact
	err := h.Store.View(ctx, func(tx *store.Tx) (err error) { c, err = findContact(tx, ref); return })
	return contactView(c), err
}

// Contacts lists every contact, by name.
func (h *Router) Contacts(ctx context.Context) ([]Contact, error) {
	var cs []store.Contact
	err := h.Store.View(ctx, func(tx *store.Tx) (err error) { cs, err = tx.Contacts(); return })
	out := make([]Contact, 0, len(cs))
	for _, c := range cs {
		out = append(out, contactView(c))
	}
	return out, err
}

// ContactPage is a page of contacts, by name; Next is the cursor of the
// next page, empty on the last.
type ContactPage struct {
	Contacts []Contact `json:"contacts"`
	Next     string    `json:"next,omitempty"`
}

// Contact pages: DefaultContactLimit a page unless asked, at most
// MaxContactLimit (60,000 contacts in one answer took 4.6 s and 5.3 MB).
const (
	DefaultContactLimit = 1000
	MaxContactLimit     = 1000
)

// ContactsPage lists contacts by name, limit of them (0: the default)
// after cursor (from an earlier page's Next; "": from the first).
func (h *Router) ContactsPage(ctx context.Context, cursor string, limit int) (ContactPage, error) {
	if limit == 0 {
		limit = DefaultContactLimit
	}
	if limit < 1 || limit > MaxContactLimit {
		return ContactPage{}, invalid(`"limit" %d: from 1 to %d`, limit, MaxContactLimit)
	}
	var cs []store.Contact
	var next string
	err := h.Store.View(ctx, func(tx *store.Tx) (err error) { cs, next, err = tx.ContactsPage(cursor, limit); return })
	if errors.Is(err, store.ErrInvalid) {
		return ContactPage{}, invalid("%v", strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": "))
	}
	p := ContactPage{Contacts: make([]Contact, 0, len(cs)), Next: next}
	for _, c := range cs {
		p.Contacts = append(p.Contacts, contactView(c))
	}
	return p, err
}

// checkGroupName checks the name of a group of contacts to create: a
// name as group:<name> takes it, and not one of the config's [groups].
func (h *Router) checkGroupName(name string) error {
	if err := checkName(name); err != nil {
		return invalid(`group name %q: %v`, name, err)
	}
	if _, ok := h.configGroup(name); ok {
		return invalid(`group %q is defined in the config's [groups]: change it there, or give this group another name`, name)
	}
	return nil
}

// configGroup finds one of the config's [groups], whatever the case.
func (h *Router) configGroup(name string) (string, bool) {
	for n := range h.Groups {
		if strings.EqualFold(n, name) {
			return n, true
		}
	}
	return "", false
}

// AddGroup creates a group of contacts.
func (h *Router) AddGroup(ctx context.Context, name string) (Group, error) {
	name = strings.TrimSpace(name)
	if err := h.checkGroupName(name); err != nil {
		return Group{}, err
	}
	err := h.Store.Update(ctx, func(tx *store.Tx) error {
		if err := tx.AddGroup(name); err != nil {
			return err
		}
		return h.auditCtx(ctx, tx, "group/add", name, "")
	})
	return Group{Name: name, Source: "contacts"}, err
}

// RemoveGroup deletes a group of contacts (not its contacts) and returns
// its name as it was stored (groups are found whatever the case).
func (h *Router) RemoveGroup(ctx context.Context, name string) (string, error) {
	if name = strings.TrimSpace(name); name == "" {
		return "", invalid(`"name" is missing: give the group's name`)
	}
	if n, ok := h.configGroup(name); ok {
		return "", invalid(`group %q is defined in the config's [groups]: remove it there`, n)
	}
	var stored string
	err := h.Store.Update(ctx, func(tx *store.Tx) (err error) {
		if stored, err = tx.DeleteGroup(name); err != nil {
			return err
		}
		return h.auditCtx(ctx, tx, "group/rm", stored, "")
	})
	return stored, err
}

// ListGroups lists the groups of contacts and the config's [groups], by
// name.
func (h *Router) ListGroups(ctx context.Context) ([]Group, error) {
	var gs []store.ContactGroup
	if err := h.Store.View(ctx, func(tx *store.Tx) (err error) { gs, err = tx.ContactGroups(); return }); err != nil {
		return nil, err
	}
	out := []Group{}
	for _, g := range gs {
		out = append(out, Group{Name: g.Name, Source: "contacts", Members: g.Members})
	}
	for n, nums := range h.Groups {
		out = append(out, Group{Name: n, Source: "config", Members: len(nums), Numbers: nums})
	}
	slices.SortFunc(out, func(a, b Group) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out, nil
}

// GroupMembers adds the contacts add names to a group and takes those rm
// names out of it (by id or name; in one transaction: an unknown one
// changes nothing), and returns its members. A member added without a
// number or an email is added, with a warning.
func (h *Router) GroupMembers(ctx context.Context, name string, add, rm []string) (GroupResult, error) {
	if name = strings.TrimSpace(name); name == "" {
		return GroupResult{}, invalid(`"name" is missing: give the group's name`)
	}
	if n, ok := h.configGroup(name); ok {
		if len(add) > 0 || len(rm) > 0 {
			return GroupResult{}, invalid(`group %q is defined in the config's [groups]: change its numbers there`, n)
		}
		return GroupResult{Group: Group{Name: n, Source: "config", Members: len(h.Groups[n]), Numbers: h.Groups[n]}}, nil
	}
	var res GroupResult
	do := func(tx *store.Tx) error {
		stored, err := tx.GroupName(name)
		if err != nil {
			return err
		}
		name := stored // as stored, whatever the spelling asked
		var added, removed []string
		for _, ref := range add {
			c, err := findContact(tx, ref)
			if err != nil {
				return err
			}
			ok, err := tx.AddMember(name, c.ID)
			if err != nil {
				return err
			}
			if ok {
				added = append(added, c.Name)
			}
			res.Warnings = append(res.Warnings, unreachable(c)...)
		}
		for _, ref := range rm {
			c, err := findContact(tx, ref)
			if err != nil {
				return err
			}
			if err := tx.RemoveMember(name, c.ID); err != nil {
				return err
			}
			removed = append(removed, c.Name)
		}
		// Only a real change is audited (adding a member again is none).
		if len(added) > 0 || len(removed) > 0 {
			var what []string
			if len(added) > 0 {
				what = append(what, "added "+strings.Join(added, ", "))
			}
			if len(removed) > 0 {
				what = append(what, "removed "+strings.Join(removed, ", "))
			}
			if err := h.auditCtx(ctx, tx, "group/members", name, strings.Join(what, "; ")); err != nil {
				return err
			}
		}
		ms, err := tx.GroupMembers(name)
		if err != nil {
			return err
		}
		res.Group = Group{Name: name, Source: "contacts", Members: len(ms), List: []Contact{}}
		for _, m := range ms {
			res.Group.List = append(res.Group.List, contactView(m))
		}
		return nil
	}
	var err error
	if len(add) == 0 && len(rm) == 0 {
		err = h.Store.View(ctx, do)
	} else {
		err = h.Store.Update(ctx, do)
	}
	if err != nil {
		return GroupResult{}, err
	}
	return res, nil
}

// expandContactGroup gives the addresses a send to a group of contacts
// reaches on channels (default sms): for each member, its first number
// (sms), its email (email), its XMPP address (xmpp). It says, per
// channel, who it could not reach there. ok is false when no such group
// exists.
func (h *Router) expandContactGroup(name string, channels []string) (addrs []Address, notes []string, ok bool, err error) {
	var ms []store.Contact
	err = h.Store.View(context.Background(), func(tx *store.Tx) (err error) { ms, err = tx.GroupMembers(name); return })
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, true, err
	}
	if len(ms) == 0 {
		return nil, nil, true, fmt.Errorf("group %q has no members", name)
	}
	if len(channels) == 0 {
		channels = []string{"sms"}
	}
	missing := map[string][]string{}
	var nowhere []string // reached on no channel asked
	for _, m := range ms {
		reached := false
		for _, ch := range channels {
			a := Address{Scheme: GroupChannels[ch]}
			switch ch {
			case "sms":
				if len(m.Phones) > 0 {
					a.Value = m.Phones[0]
				}
			case "email":
				a.Value = m.Email
			case "xmpp":
				a.Value = m.XMPP
			}
			if a.Value == "" {
				missing[ch] = append(missing[ch], m.Name)
				continue
			}
			addrs = append(addrs, a)
			reached = true
		}
		if !reached {
			nowhere = append(nowhere, m.Name)
		}
	}
	what := map[string]string{"sms": "number", "email": "email", "xmpp": "XMPP address"}
	names := func(names []string) string {
		if len(names) > 10 {
			names = append(slices.Clone(names[:10]), fmt.Sprintf("and %d more", len(names)-10))
		}
		return strings.Join(names, ", ")
	}
	for _, ch := range channels {
		if n := len(missing[ch]); n > 0 {
			notes = append(notes, fmt.Sprintf("group %s: %d %s no %s: %s", name, n, plural(n, "member has", "members have"), what[ch], names(missing[ch])))
		}
	}
	if n := len(nowhere); n > 0 && len(channels) > 1 {
		notes = append(notes, fmt.Sprintf("group %s: %d %s no address on any channel asked (%s), not sent to: %s", name, n, plural(n, "member has", "members have"),
			strings.Join(channels, ", "), names(nowhere)))
	}
	if len(addrs) == 0 {
		return nil, notes, true, fmt.Errorf("group %q: no member can be reached on %s", name, strings.Join(channels, ", "))
	}
	return addrs, notes, true, nil
}

// checkChannels checks a send request's "channels".
func checkChannels(chs []string) error {
	seen := map[string]bool{}
	for _, ch := range chs {
		if _, ok := GroupChannels[ch]; !ok {
			return fmt.Errorf(`"channels": %q is not a channel a group can be sent on (sms, email, xmpp)`, ch)
		}
		if seen[ch] {
			return fmt.Errorf(`"channels": %q is given twice`, ch)
		}
		seen[ch] = true
	}
	return nil
}

// CSVColumns are the columns of a contacts CSV file (the first line
// names them, in any order; "name" is needed). Numbers, tags and groups
// are separated by ";".
var CSVColumns = []string{"name", "phones", "email", "xmpp", "language", "tags", "notes", "groups"}

// DefaultMaxImportRows bounds the contacts of one import: it is one
// transaction (all or nothing), and every other write (an inbound SMS, a
// send, a PUBACK) waits for it. Measured on a 2-core box
// (TestImportBench, onto as many contacts already there, a number, an
// email, a tag and a group each): 5,000 rows held the lock 0.6–0.73 s and
// a write waited at most 0.58–0.68 s; 8,000 rows 0.9 s; 10,000 1.5 s (the
// 50,000 of the hostile trial: 5.9 s, before statements were kept
// prepared, which halved an import's time).
const DefaultMaxImportRows = 5000

// MaxImportErrors bounds the lines an import's error lists.
const MaxImportErrors = 20

// ImportContacts adds the contacts of a CSV file (see CSVColumns), and
// puts each in its groups (created when missing), all in one
// transaction: a bad line imports nothing, and the error names every bad
// line (up to MaxImportErrors) and what is wrong with it.
func (h *Router) ImportContacts(ctx context.Context, r io.Reader) (int, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	if err := checkUTF8(data); err != nil {
		return 0, err
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	var head []string
	head, err = cr.Read()
	if err == io.EOF {
		return 0, invalid("line 1: the file is empty: the first line names the columns (%s)", strings.Join(CSVColumns, ","))
	}
	if err != nil {
		return 0, invalid("%v", err)
	}
	col := map[string]int{}
	for i, name := range head {
		name = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")))
		if !slices.Contains(CSVColumns, name) {
			return 0, invalid("line 1: column %d %q is not a column of contacts (%s)", i+1, name, strings.Join(CSVColumns, ","))
		}
		if _, dup := col[name]; dup {
			return 0, invalid("line 1: column %q is given twice", name)
		}
		col[name] = i
	}
	if _, ok := col["name"]; !ok {
		return 0, invalid(`line 1: no "name" column (the first line names the columns: %s)`, strings.Join(CSVColumns, ","))
	}
	type row struct {
		line   int
		c      store.Contact
		groups []string
	}
	var rows []row
	var errs []string
	bad := func(line int, err error) {
		if len(errs) < MaxImportErrors {
			errs = append(errs, fmt.Sprintf("line %d: %v", line, err))
		} else if len(errs) == MaxImportErrors {
			errs = append(errs, "and more")
		}
	}
	split := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ";") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	limit := h.MaxImportRows
	if limit <= 0 {
		limit = DefaultMaxImportRows
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// FieldPos is only defined for a record read without error
			// (called before this check it panicked on a stray quote).
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return 0, invalid("line %d: %v: nothing was imported", pe.Line, pe.Err)
			}
			return 0, invalid("%v", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // an empty line
		}
		if len(rec) != len(head) {
			bad(line, fmt.Errorf("%d fields, the first line names %d columns", len(rec), len(head)))
			continue
		}
		get := func(name string) *string {
			i, ok := col[name]
			if !ok {
				return nil
			}
			v := unguardCell(rec[i])
			return &v
		}
		list := func(name string) *[]string {
			v := get(name)
			if v == nil {
				return nil
			}
			l := split(*v)
			return &l
		}
		in := ContactInput{Name: get("name"), Phones: list("phones"), Email: get("email"), XMPP: get("xmpp"), Language: get("language"), Tags: list("tags"), Notes: get("notes")}
		var c store.Contact
		if err := in.apply(&c); err != nil {
			bad(line, err)
			continue
		}
		if len(c.Phones) == 0 && c.Email == "" && c.XMPP == "" {
			bad(line, fmt.Errorf(`contact %q has no address: give "phones", "email" or "xmpp"`, c.Name))
			continue
		}
		var groups []string
		if g := list("groups"); g != nil {
			for _, name := range *g {
				if err := h.checkGroupName(name); err != nil {
					bad(line, fmt.Errorf(`"groups": %v`, err))
					continue
				}
				groups = append(groups, name)
			}
		}
		rows = append(rows, row{line, c, groups})
		if len(rows) > limit {
			return 0, invalid("line %d: more than %d contacts: import at most %d at a time (split the file; an import is one write, "+
				"and a larger one would hold up the gateway's other writes, inbound SMS included); nothing was imported", line, limit, limit)
		}
	}
	if len(errs) > 0 {
		return 0, invalid("%s; nothing was imported", strings.Join(errs, "; "))
	}
	if len(rows) == 0 {
		return 0, nil // nothing to import: nothing changes, nothing is audited
	}
	err = h.Store.Update(ctx, func(tx *store.Tx) error {
		made := map[string]bool{} // the groups known to exist, lower case
		groups, members := 0, 0   // created
		for i := range rows {
			r := &rows[i]
			if err := tx.SaveContact(&r.c); err != nil {
				if errors.Is(err, store.ErrExists) {
					bad(r.line, err)
					continue
				}
				return err
			}
			for _, g := range r.groups {
				if !made[strings.ToLower(g)] {
					err := tx.AddGroup(g)
					if err != nil && !errors.Is(err, store.ErrExists) {
						return err
					}
					if err == nil {
						groups++
					}
					made[strings.ToLower(g)] = true
				}
				added, err := tx.AddMember(g, r.c.ID)
				if err != nil {
					return err
				}
				if added {
					members++
				}
			}
		}
		if len(errs) > 0 {
			return invalid("%s; nothing was imported", strings.Join(errs, "; "))
		}
		return h.auditCtx(ctx, tx, "contact/import", "", fmt.Sprintf("%d contacts, %d %s created, %d %s",
			len(rows), groups, plural(groups, "group", "groups"), members, plural(members, "membership", "memberships")))
	})
	if err != nil {
		return 0, err
	}
	return len(rows), nil
}

// ExportContacts writes every contact as CSV, in the form ImportContacts
// reads.
func (h *Router) ExportContacts(ctx context.Context, w io.Writer) error {
	cs, err := h.Contacts(ctx)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cw.Write(CSVColumns)
	for _, c := range cs {
		row := []string{c.Name, strings.Join(c.Phones, ";"), c.Email, c.XMPP, c.Language, strings.Join(c.Tags, ";"), c.Notes, strings.Join(c.Groups, ";")}
		for i := range row {
			row[i] = guardCell(row[i])
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// guardCell keeps a spreadsheet from reading a cell as a formula (CSV
// injection: a contact named =HYPERLINK(…) runs when the export is
// opened): a cell that starts with = + - @, a tab or a carriage return
// gets a ' in front, as spreadsheets write such text. Numbers start with
// +, so they are exported as '+15555550100; an import takes the ' off.
func guardCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// unguardCell undoes guardCell.
func unguardCell(v string) string {
	if len(v) > 1 && v[0] == '\'' && strings.ContainsRune("=+-@\t\r", rune(v[1])) {
		return v[1:]
	}
	return v
}

// checkUTF8 refuses a file that is not UTF-8 with what to do about it:
// a spreadsheet's "CSV" is often Windows-1252, and "Unicode text" UTF-16
// (before, the first byte of it that is a control character was named).
func checkUTF8(b []byte) error {
	const save = "save it as CSV UTF-8 (in a spreadsheet: Save As, CSV UTF-8); nothing was imported"
	if bytes.HasPrefix(b, []byte{0xff, 0xfe}) || bytes.HasPrefix(b, []byte{0xfe, 0xff}) ||
		len(b) >= 4 && (b[1] == 0 && b[3] == 0 || b[0] == 0 && b[2] == 0) {
		return invalid("the file is UTF-16, not UTF-8: %s", save)
	}
	if utf8.Valid(b) {
		return nil
	}
	line, col := 1, 1
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return invalid("the file is not UTF-8 (line %d, character %d is the byte 0x%02X, perhaps Windows-1252): %s", line, col, b[i], save)
		}
		if r == '\n' {
			line, col = line+1, 0
		}
		col++
		i += n
	}
	return nil
}

// channelList is how a history names a group send's channels.
func channelList(chs []string) string {
	if len(chs) == 0 {
		return "sms"
	}
	return strings.Join(chs, ", ")
}

// DecodeAdmin reads one JSON object of an admin request into v (unknown
// fields refused), with an error that names the field; an empty body is
// an empty object.
func DecodeAdmin(b []byte, v any) error {
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return invalid(`%q: must be %s, not %s`, te.Field, jsonKind(te.Type.Kind()), te.Value)
		}
		return invalid("bad JSON: %v", err)
	}
	return afterJSON(dec, b)
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Slice:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a number"
}

// ContactOps are the names of the contact and group operations as the
// MQTT API calls them (admin/<op>, answered on admin/<op>/reply).
var ContactOps = []string{"contact/add", "contact/edit", "contact/rm", "contact/show", "contact/list", "contact/import", "contact/export",
	"group/add", "group/rm", "group/list", "group/members"}

// ContactOp runs one of ContactOps with its JSON request (see README:
// the same fields as the HTTP API; a contact is named by "contact", its
// id or name) and returns its result and warnings. An op not in
// ContactOps is ErrInvalid.
func (h *Router) ContactOp(ctx context.Context, op string, body []byte) (result any, warnings []string, err error) {
	var ref struct {
		Contact string `json:"contact"`
	}
	var group struct {
		Name string   `json:"name"`
		Add  []string `json:"add,omitempty"`
		Rm   []string `json:"rm,omitempty"`
	}
	var none struct{}
	body, by := takeBy(body) // who asks: on MQTT the client, "by" a detail
	ctx = WithBy(ctx, by)
	switch op {
	case "contact/add":
		var in ContactInput
		if err := DecodeAdmin(body, &in); err != nil {
			return nil, nil, err
		}
		res, err := h.AddContact(ctx, in)
		return res.Contact, res.Warnings, err
	case "contact/edit":
		var in struct {
			Contact string `json:"contact"`
			ContactInput
		}
		if err := DecodeAdmin(body, &in); err != nil {
			return nil, nil, err
		}
		res, err := h.EditContact(ctx, in.Contact, in.ContactInput)
		return res.Contact, res.Warnings, err
	case "contact/rm", "contact/show":
		if err := DecodeAdmin(body, &ref); err != nil {
			return nil, nil, err
		}
		if op == "contact/rm" {
			c, err := h.RemoveContact(ctx, ref.Contact)
			return c, nil, err
		}
		c, err := h.ShowContact(ctx, ref.Contact)
		return c, nil, err
	case "contact/list":
		var in struct {
			Limit  int    `json:"limit"`
			Cursor string `json:"cursor"`
		}
		if err := DecodeAdmin(body, &in); err != nil {
			return nil, nil, err
		}
		p, err := h.ContactsPage(ctx, in.Cursor, in.Limit)
		return p, nil, err
	case "contact/import":
		var in struct {
			CSV string `json:"csv"`
		}
		if err := DecodeAdmin(body, &in); err != nil {
			return nil, nil, err
		}
		n, err := h.ImportContacts(ctx, strings.NewReader(in.CSV))
		return map[string]int{"imported": n}, nil, err
	case "contact/export":
		if err := DecodeAdmin(body, &none); err != nil {
			return nil, nil, err
		}
		var b strings.Builder
		err := h.ExportContacts(ctx, &b)
		return map[string]string{"csv": b.String()}, nil, err
	case "group/add", "group/rm":
		if err := DecodeAdmin(body, &group); err != nil {
			return nil, nil, err
		}
		if op == "group/add" {
			g, err := h.AddGroup(ctx, group.Name)
			return g, nil, err
		}
		stored, err := h.RemoveGroup(ctx, group.Name)
		return map[string]string{"removed": stored}, nil, err
	case "group/list":
		if err := DecodeAdmin(body, &none); err != nil {
			return nil, nil, err
		}
		gs, err := h.ListGroups(ctx)
		return gs, nil, err
	case "group/members":
		if err := DecodeAdmin(body, &group); err != nil {
			return nil, nil, err
		}
		res, err := h.GroupMembers(ctx, group.Name, group.Add, group.Rm)
		return res.Group, res.Warnings, err
	}
	return nil, nil, invalid("unknown operation %q (known: %s)", op, strings.Join(ContactOps, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
