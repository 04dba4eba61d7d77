package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/outpost-sms/outpost/bridge"
)

const contactUsage = `usage: outpost contact <command> [flags]

commands:
  add NAME --phone N [--phone N…] [--email E] [--xmpp J] [--tag T…] [--language L] [--notes TEXT]
  edit CONTACT [--name NAME] [--phone N…] [--email E] [--xmpp J] [--tag T…] [--language L] [--notes TEXT]
                 (only the flags given change; --phone and --tag replace the lists; "" clears)
  rm CONTACT
  list
  show CONTACT
  import FILE.csv   (columns: name,phones,email,xmpp,language,tags,notes,groups; lists
                     separated by ";"; a bad line imports nothing and is named)
  export [FILE.csv] (to stdout without FILE)

CONTACT is a contact's id or name. Each command takes --json.`

const groupUsage = `usage: outpost group <command> [flags]

commands:
  add NAME
  rm NAME
  list
  members NAME [--add CONTACT…] [--rm CONTACT…]

A send to group:NAME reaches its members (--channels sms,email on outpost send).
Each command takes --json.`

// listFlag is a flag that may be given several times, or once with
// comma-separated values; set says it was given.
type listFlag struct {
	v   []string
	set bool
}

func (l *listFlag) String() string { return strings.Join(l.v, ",") }
func (l *listFlag) Set(s string) error {
	l.set = true
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			l.v = append(l.v, p)
		}
	}
	return nil
}

// subcommand runs one of cmds for args (its name first).
func subcommand(name, usage string, args []string, cmds map[string]func([]string) int) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Println(usage)
		return 0
	}
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, "outpost %s: missing command\n%s\n", name, usage)
		return exitUsage
	}
	f, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "outpost %s: unknown command %q\n%s\n", name, args[0], usage)
		return exitUsage
	}
	return f(args[1:])
}

func cmdContact(args []string) int {
	return subcommand("contact", contactUsage, args, map[string]func([]string) int{
		"add": func(a []string) int { return contactChange("add", a) }, "edit": func(a []string) int { return contactChange("edit", a) },
		"rm": cmdContactRm, "list": cmdContactList, "show": cmdContactShow, "import": cmdContactImport, "export": cmdContactExport,
	})
}

func cmdGroup(args []string) int {
	return subcommand("group", groupUsage, args, map[string]func([]string) int{
		"add": cmdGroupAdd, "rm": cmdGroupRm, "list": cmdGroupList, "members": cmdGroupMembers,
	})
}

// call sends body to the daemon and prints the answer as JSON (asJSON)
// or decodes it into v; it returns the exit code, or -1 to go on.
func call(cmd string, mk func() (*client, error), method, path string, body any, asJSON bool, v any) int {
	c, err := mk()
	if err != nil {
		return fail(cmd, err)
	}
	var raw json.RawMessage
	if err := c.do(method, path, body, &raw); err != nil {
		return fail(cmd, err)
	}
	if asJSON {
		os.Stdout.Write(raw)
		return 0
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			return fail(cmd, fmt.Errorf("the daemon's answer: %w", err))
		}
	}
	return -1
}

func warn(ws []string) {
	for _, w := range ws {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
}

// contactChange is contact add and contact edit.
func contactChange(op string, args []string) int {
	fs := flag.NewFlagSet("contact "+op, flag.ContinueOnError)
	var phones, tags listFlag
	name := fs.String("name", "", "the contact's name")
	fs.Var(&phones, "phone", "a phone number in international form (+15555550100); again for more")
	email := fs.String("email", "", "an email address")
	xmpp := fs.String("xmpp", "", "an XMPP address (user@example.org)")
	fs.Var(&tags, "tag", "a tag; again for more")
	language := fs.String("language", "", `a language tag ("sw", "fr-CD")`)
	notes := fs.String("notes", "", "notes")
	asJSON := fs.Bool("json", false, "print JSON")
	mk := clientFlags(fs)
	fs.Usage = func() {
		if op == "add" {
			fmt.Fprintln(fs.Output(), "usage: outpost contact add NAME --phone N [--email E] [--xmpp J] [--tag T] [--json]\n\nAdds a contact; it needs a number, an email or an XMPP address. What it lacks\nto be reached (a number, an email) is a warning.")
		} else {
			fmt.Fprintln(fs.Output(), "usage: outpost contact edit CONTACT [--name NAME] [--phone N…] [--email E] [--xmpp J] [--tag T…] [--json]\n\nChanges the fields given (--phone and --tag replace the lists; an empty value clears).")
		}
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 1, 1)
	if code >= 0 {
		return code
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if op == "edit" && !slices.ContainsFunc([]string{"name", "phone", "email", "xmpp", "tag", "language", "notes"}, func(f string) bool { return given[f] }) {
		return usageError(fs, "nothing to change: give --name, --phone, --email, --xmpp, --tag, --language or --notes")
	}
	var in bridge.ContactInput
	if op == "add" {
		if given["name"] {
			return usageError(fs, "the name is the argument: outpost contact add NAME")
		}
		in.Name = &pos[0]
	} else if given["name"] {
		in.Name = name
	}
	// --phone "" and --tag "" clear the list: an empty list, not null
	// (which the daemon reads as "not given": they did nothing).
	if phones.set {
		v := append([]string{}, phones.v...)
		in.Phones = &v
	}
	if tags.set {
		v := append([]string{}, tags.v...)
		in.Tags = &v
	}
	for f, p := range map[string]**string{"email": &in.Email, "xmpp": &in.XMPP, "language": &in.Language, "notes": &in.Notes} {
		if given[f] {
			*p = map[string]*string{"email": email, "xmpp": xmpp, "language": language, "notes": notes}[f]
		}
	}
	if op == "add" && in.Phones != nil {
		// Its form only: whether a national number reads as an
		// international one is the daemon's [sms] country_code.
		for _, p := range *in.Phones {
			if _, err := bridge.CanonicalPhone(p); err != nil {
				return fail("contact add", fmt.Errorf("--phone %v", err))
			}
		}
	}
	var res bridge.ContactResult
	method, path := "POST", "/v1/contacts"
	if op == "edit" {
		method, path = "PATCH", "/v1/contacts/"+url.PathEscape(pos[0])
	}
	c, err := mk()
	if err != nil {
		return fail("contact "+op, err)
	}
	var raw json.RawMessage
	if err := c.do(method, path, in, &raw); err != nil {
		return fail("contact "+op, err)
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return fail("contact "+op, fmt.Errorf("the daemon's answer: %w", err))
	}
	warn(res.Warnings)
	if *asJSON {
		os.Stdout.Write(raw)
		return 0
	}
	printContact(res.Contact)
	return 0
}

func printContact(c bridge.Contact) {
	fmt.Printf("id:       %d\nname:     %s\n", c.ID, printable(c.Name, false))
	for _, f := range []struct{ k, v string }{
		{"phones", strings.Join(c.Phones, ", ")}, {"email", c.Email}, {"xmpp", c.XMPP}, {"language", c.Language},
		{"tags", strings.Join(c.Tags, ", ")}, {"groups", strings.Join(c.Groups, ", ")},
	} {
		if f.v != "" {
			fmt.Printf("%-9s %s\n", f.k+":", printable(f.v, false))
		}
	}
	if c.Notes != "" {
		fmt.Printf("notes:    %s\n", indented(c.Notes))
	}
}

// refCmd is a command that takes one CONTACT or NAME and --json.
func refCmd(name, usage string, args []string) (ref string, asJSON bool, mk func() (*client, error), code int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	j := fs.Bool("json", false, "print JSON")
	mk = clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usage)
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 1, 1)
	if code >= 0 {
		return "", false, nil, code
	}
	return pos[0], *j, mk, -1
}

func cmdContactRm(args []string) int {
	ref, asJSON, mk, code := refCmd("contact rm", "usage: outpost contact rm CONTACT [--json]\n\nDeletes a contact (and takes it out of its groups).", args)
	if code >= 0 {
		return code
	}
	var res struct{ Removed bridge.Contact }
	if code := call("contact rm", mk, "DELETE", "/v1/contacts/"+url.PathEscape(ref), nil, asJSON, &res); code >= 0 {
		return code
	}
	fmt.Printf("removed contact %d (%s)\n", res.Removed.ID, printable(res.Removed.Name, false))
	return 0
}

func cmdContactShow(args []string) int {
	ref, asJSON, mk, code := refCmd("contact show", "usage: outpost contact show CONTACT [--json]", args)
	if code >= 0 {
		return code
	}
	var c bridge.Contact
	if code := call("contact show", mk, "GET", "/v1/contacts/"+url.PathEscape(ref), nil, asJSON, &c); code >= 0 {
		return code
	}
	printContact(c)
	return 0
}

func cmdContactList(args []string) int {
	fs := flag.NewFlagSet("contact list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, `print JSON: {"contacts": […], "next": CURSOR}`)
	limit := fs.Int("limit", bridge.DefaultContactLimit, fmt.Sprintf("how many contacts (1 to %d)", bridge.MaxContactLimit))
	cursor := fs.String("cursor", "", "the page after an earlier listing (it prints the cursor)")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost contact list [--limit N] [--cursor C] [--json]\n\nContacts by name, a page at a time.")
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	if *limit < 1 || *limit > bridge.MaxContactLimit {
		return usageError(fs, fmt.Sprintf("--limit %d: from 1 to %d", *limit, bridge.MaxContactLimit))
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *cursor != "" {
		q.Set("cursor", *cursor)
	}
	var p bridge.ContactPage
	if code := call("contact list", mk, "GET", "/v1/contacts?"+q.Encode(), nil, *asJSON, &p); code >= 0 {
		return code
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tPHONES\tEMAIL\tXMPP\tGROUPS")
	for _, c := range p.Contacts {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", c.ID, printable(c.Name, false), strings.Join(c.Phones, ","), printable(c.Email, false),
			printable(c.XMPP, false), strings.Join(c.Groups, ","))
	}
	w.Flush()
	if p.Next != "" {
		fmt.Printf("more: --cursor %s\n", p.Next)
	}
	return 0
}

func cmdContactImport(args []string) int {
	fs := flag.NewFlagSet("contact import", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost contact import FILE.csv [--json]\n\nAdds the contacts of a CSV file whose first line names its columns\n("+strings.Join(bridge.CSVColumns, ",")+"; phones, tags and groups separated by \";\"),\nand puts them in their groups (made when missing). A bad line imports nothing: every\nbad line is named.")
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 1, 1)
	if code >= 0 {
		return code
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		return fail("contact import", err)
	}
	var res struct{ Imported int }
	if code := call("contact import", mk, "POST", "/v1/contacts/import", b, *asJSON, &res); code >= 0 {
		return code
	}
	fmt.Printf("imported %d contacts\n", res.Imported)
	return 0
}

func cmdContactExport(args []string) int {
	fs := flag.NewFlagSet("contact export", flag.ContinueOnError)
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost contact export [FILE.csv]\n\nWrites every contact as CSV (what contact import reads), to stdout without FILE.")
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 0, 1)
	if code >= 0 {
		return code
	}
	c, err := mk()
	if err != nil {
		return fail("contact export", err)
	}
	var raw json.RawMessage
	if err := c.do("GET", "/v1/contacts/export", nil, &raw); err != nil {
		return fail("contact export", err)
	}
	if len(pos) == 0 {
		os.Stdout.Write(raw)
		return 0
	}
	if err := os.WriteFile(pos[0], raw, 0o600); err != nil {
		return fail("contact export", err)
	}
	return 0
}

func cmdGroupAdd(args []string) int {
	name, asJSON, mk, code := refCmd("group add", "usage: outpost group add NAME [--json]\n\nMakes a group of contacts (letters, digits, '_', '.', '-').", args)
	if code >= 0 {
		return code
	}
	if code := call("group add", mk, "POST", "/v1/groups", map[string]string{"name": name}, asJSON, nil); code >= 0 {
		return code
	}
	fmt.Printf("group %s added\n", name)
	return 0
}

func cmdGroupRm(args []string) int {
	name, asJSON, mk, code := refCmd("group rm", "usage: outpost group rm NAME [--json]\n\nDeletes a group (not its contacts).", args)
	if code >= 0 {
		return code
	}
	if code := call("group rm", mk, "DELETE", "/v1/groups/"+url.PathEscape(name), nil, asJSON, nil); code >= 0 {
		return code
	}
	fmt.Printf("group %s removed\n", name)
	return 0
}

func cmdGroupList(args []string) int {
	fs := flag.NewFlagSet("group list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost group list [--json]\n\nGroups of contacts, and the config's [groups] (read only).")
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	var gs []bridge.Group
	if code := call("group list", mk, "GET", "/v1/groups", nil, *asJSON, &gs); code >= 0 {
		return code
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tMEMBERS\tFROM")
	for _, g := range gs {
		fmt.Fprintf(w, "%s\t%d\t%s\n", g.Name, g.Members, g.Source)
	}
	w.Flush()
	return 0
}

func cmdGroupMembers(args []string) int {
	fs := flag.NewFlagSet("group members", flag.ContinueOnError)
	var add, rm listFlag
	fs.Var(&add, "add", "a contact (id or name) to add; again for more")
	fs.Var(&rm, "rm", "a contact (id or name) to take out; again for more")
	asJSON := fs.Bool("json", false, "print JSON")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost group members NAME [--add CONTACT] [--rm CONTACT] [--json]\n\nLists a group's members, after adding and taking out those given (all or\nnone: an unknown contact changes nothing). A member added without a number\nor an email is added, with a warning.")
		fs.PrintDefaults()
	}
	pos, code := parseArgs(fs, args, 1, 1)
	if code >= 0 {
		return code
	}
	var res bridge.GroupResult
	c, err := mk()
	if err != nil {
		return fail("group members", err)
	}
	var raw json.RawMessage
	if add.set || rm.set {
		err = c.do("POST", "/v1/groups/"+url.PathEscape(pos[0])+"/members", map[string][]string{"add": add.v, "rm": rm.v}, &raw)
	} else {
		err = c.do("GET", "/v1/groups/"+url.PathEscape(pos[0]), nil, &raw)
		raw = json.RawMessage(`{"group": ` + string(raw) + `}`)
	}
	if err != nil {
		return fail("group members", err)
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return fail("group members", fmt.Errorf("the daemon's answer: %w", err))
	}
	warn(res.Warnings)
	if *asJSON {
		os.Stdout.Write(raw)
		return 0
	}
	g := res.Group
	if g.Source == "config" {
		fmt.Printf("group %s (config [groups], read only): %s\n", g.Name, strings.Join(g.Numbers, ", "))
		return 0
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "group %s: %d members\nID\tNAME\tPHONES\tEMAIL\n", g.Name, g.Members)
	for _, m := range g.List {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", m.ID, printable(m.Name, false), strings.Join(m.Phones, ","), printable(m.Email, false))
	}
	w.Flush()
	return 0
}
