package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	bhttp "github.com/outpost-sms/outpost/bridge/http"
	"github.com/outpost-sms/outpost/store"
)

const tokensUsage = `usage:
  outpost token add NAME --role user|admin [--expires 720h]   a token for the HTTP API on TCP ([http] listen);
                                                              it is printed once, alone on the last line
  outpost token list                                          the tokens: name, role, created, expires, last used
  outpost token rm NAME                                       remove a token: its requests are refused from then on
role user may send, read its own sends and the inbox; admin may do everything.
flags: --json (print the daemon's JSON answer), --config FILE, --data-dir DIR, --timeout D`

// cmdTokens is outpost token …, through the daemon's API (/v1/tokens).
func cmdTokens(args []string) int {
	op := ""
	if len(args) > 0 {
		op, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("token "+op, flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	role := fs.String("role", "", "add: user or admin")
	expires := fs.String("expires", "", "add: how long the token is valid (720h); default: no end")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), tokensUsage)
		fs.PrintDefaults()
	}
	var method, path, name string
	var body any
	switch op {
	case "add", "rm":
		pos, code := parseArgs(fs, args, 1, 1)
		if code >= 0 {
			return code
		}
		name = pos[0]
		if op == "rm" {
			method, path = "DELETE", "/v1/tokens/"+url.PathEscape(pos[0])
			break
		}
		if *role != bhttp.RoleUser && *role != bhttp.RoleAdmin {
			return usageError(fs, fmt.Sprintf("--role %q: want user or admin", *role))
		}
		if *expires != "" {
			if d, err := time.ParseDuration(*expires); err != nil || d <= 0 {
				return usageError(fs, fmt.Sprintf("--expires %q: want a positive duration such as 720h", *expires))
			}
		}
		method, path, body = "POST", "/v1/tokens", bhttp.TokenRequest{Name: pos[0], Role: *role, Expires: *expires}
	case "list":
		if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
			return code
		}
		method, path = "GET", "/v1/tokens"
	case "-h", "--help", "help":
		fmt.Println(tokensUsage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "outpost token: %q: want add, list or rm\n%s\n", op, tokensUsage)
		return exitUsage
	}
	c, err := mk()
	if err != nil {
		return fail("token "+op, err)
	}
	var raw json.RawMessage
	if err := c.do(method, path, body, &raw); err != nil {
		return fail("token "+op, err)
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return 0
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format(time.DateTime)
	}
	switch op {
	case "add":
		var t bhttp.NewToken
		if err := json.Unmarshal(raw, &t); err != nil {
			return fail("token add", err)
		}
		fmt.Printf("token %s (role %s, expires %s): keep it now, it is not shown again:\n%s\n", t.Name, t.Role, at(t.ExpiresAt), t.Token)
	case "rm":
		fmt.Printf("token %s removed\n", name)
	case "list":
		var list []store.APIToken
		if err := json.Unmarshal(raw, &list); err != nil {
			return fail("token list", err)
		}
		if len(list) == 0 {
			fmt.Println("no token (outpost token add NAME --role user|admin)")
			return 0
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		defer w.Flush()
		fmt.Fprintln(w, "NAME\tROLE\tCREATED\tEXPIRES\tLAST USED")
		for _, t := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, at(t.CreatedAt), at(t.ExpiresAt), at(t.LastUsed))
		}
	}
	return 0
}
