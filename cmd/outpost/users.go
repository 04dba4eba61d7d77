package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	bhttp "github.com/outpost-sms/outpost/bridge/http"
	"github.com/outpost-sms/outpost/store"
	"golang.org/x/sys/unix"
)

const usersUsage = `usage:
  outpost user add NAME --role user|admin   a web console user; the password is asked for
                                            (or read, one line, from stdin)
  outpost user list                         the users: name, role, created
  outpost user rm NAME                      remove a user: its sessions end at once
  outpost user passwd NAME                  set a new password: the user's sessions end
role user may send and read the inbox; admin may do everything. Passwords: 8 to 72 bytes.
The console is on [http] listen (http://HOST:PORT/).
flags: --json (print the daemon's JSON answer), --config FILE, --data-dir DIR, --timeout D`

// cmdUsers is outpost user …, through the daemon's API (/v1/users).
func cmdUsers(args []string) int {
	return runUsers(args, os.Stdin, os.Stderr)
}

func runUsers(args []string, in *os.File, prompt io.Writer) int {
	op := ""
	if len(args) > 0 {
		op, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("user "+op, flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	role := fs.String("role", "", "add: user or admin")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usersUsage)
		fs.PrintDefaults()
	}
	var method, path string
	var body any
	var pos []string
	switch op {
	case "add", "rm", "passwd":
		var code int
		if pos, code = parseArgs(fs, args, 1, 1); code >= 0 {
			return code
		}
		name := url.PathEscape(pos[0])
		switch op {
		case "rm":
			method, path = "DELETE", "/v1/users/"+name
		case "add":
			if *role != bhttp.RoleUser && *role != bhttp.RoleAdmin {
				return usageError(fs, fmt.Sprintf("--role %q: want user or admin", *role))
			}
			pw, err := readPassword(in, prompt, "password for "+pos[0])
			if err != nil {
				return fail("user add", err)
			}
			method, path, body = "POST", "/v1/users", bhttp.UserRequest{Name: pos[0], Role: *role, Password: pw}
		case "passwd":
			pw, err := readPassword(in, prompt, "new password for "+pos[0])
			if err != nil {
				return fail("user passwd", err)
			}
			method, path, body = "POST", "/v1/users/"+name+"/password", bhttp.PasswordRequest{Password: pw}
		}
	case "list":
		if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
			return code
		}
		method, path = "GET", "/v1/users"
	case "-h", "--help", "help":
		fmt.Println(usersUsage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "outpost user: %q: want add, list, rm or passwd\n%s\n", op, usersUsage)
		return exitUsage
	}
	c, err := mk()
	if err != nil {
		return fail("user "+op, err)
	}
	var raw json.RawMessage
	if err := c.do(method, path, body, &raw); err != nil {
		return fail("user "+op, err)
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return 0
	}
	switch op {
	case "add":
		fmt.Printf("user %s added (role %s)\n", pos[0], *role)
	case "rm":
		fmt.Printf("user %s removed\n", pos[0])
	case "passwd":
		fmt.Printf("password of %s changed; its sessions ended\n", pos[0])
	case "list":
		var list []store.User
		if err := json.Unmarshal(raw, &list); err != nil {
			return fail("user list", err)
		}
		if len(list) == 0 {
			fmt.Println("no user (outpost user add NAME --role user|admin)")
			return 0
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		defer w.Flush()
		fmt.Fprintln(w, "NAME\tROLE\tCREATED")
		for _, u := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\n", u.Name, u.Role, u.CreatedAt.Local().Format(time.DateTime))
		}
	}
	return 0
}

// readPassword asks for a password twice on a terminal, echo off; from
// anything else it reads one line.
func readPassword(in *os.File, prompt io.Writer, what string) (string, error) {
	fd := int(in.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && line == "" {
			return "", errors.New("no password on stdin")
		}
		return checkPassword(strings.TrimRight(line, "\r\n"))
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	r := bufio.NewReader(in)
	ask := func(p string) string {
		fmt.Fprintf(prompt, "%s: ", p)
		line, _ := r.ReadString('\n')
		fmt.Fprintln(prompt)
		return strings.TrimRight(line, "\r\n")
	}
	first := ask(what)
	if ask("again") != first {
		return "", errors.New("the two passwords differ")
	}
	return checkPassword(first)
}

func checkPassword(pw string) (string, error) {
	if len(pw) < bhttp.MinPassword {
		return "", fmt.Errorf("password: at least %d characters", bhttp.MinPassword)
	}
	return pw, nil
}
