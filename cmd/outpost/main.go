// Command outpost is the Outpost SMS gateway: the daemon (run), the CLI
// that talks to it over its Unix socket (send, show, retry, cancel, inbox,
// status, hub), a simulated modem on a pty (sim), and config checking. Wiring
// lives here and nowhere else.
package main

import (
	"flag"
	"fmt"
	"os"

	// The time zone database is in the binary (about 450 KB): a minimal
	// Pi image without /usr/share/zoneinfo would otherwise refuse
	// quota.timezone = "Africa/Nairobi" and not start.
	_ "time/tzdata"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

const usage = `outpost: an SMS gateway for places with bad or no internet

usage: outpost <command> [flags]

commands:
  run            run the daemon (with no --config nor $OUTPOST_CONFIG: simulated modem, local broker, ./outpost-data)
  send           queue one SMS: --to NUMBER --text TEXT
  show ID        a message with each destination's state and its history
  retry ID       put a failed or expired message back in the queue (attempts reset)
  cancel ID      cancel a queued or scheduled message (not one being sent right now)
  inbox          inbound messages, newest first
  messages       list and search: [--in|--out] [--state S] [--number N] [--tag T] [--since 7d] [--limit N]
  mark ID        mark an inbound message --read, --handled, or --tag T
  rm ID          delete a message with its destinations and history
  status         modems, queues; exits 1 when no daemon is running
  modems         each modem: identity, signal over the day, today's traffic, resets;
                 modems scan: every serial port, whether it answers AT, its IMEI/ICCID
  hub            the hub queue: hub set-aside (messages the hub kept refusing),
                 hub requeue ID…|--all (put them back in the queue)
  optout         opt-outs (STOP): optout list, optout add|remove NUMBER
  topic          topics' subscribers: topic list [TOPIC], topic subscribe|unsubscribe TOPIC ADDR, topic log [ADDR]
  ban, unban     bans: ban NUMBER [--reason R], ban list, unban NUMBER
  audit          the audit log: audit [--since 1h|RFC3339] [--who W]
  token          tokens of the HTTP API on TCP: token add NAME --role user|admin [--expires 720h], list, rm NAME
  user           web console users: user add NAME --role user|admin, list, rm NAME, passwd NAME
  pause, resume  pause NAME / resume NAME: a modem or a connector stops sending (kept queued), or goes on
  stats          statistics: stats [NUMBER] [--since 7d] [--modem M]: a number's traffic, modems, channels
  quota          a source's SMS this hour and day and its bounds: quota [--who W] [--number N]
  contact        contacts: contact add NAME --phone N [--email E], edit, rm, list, show,
                 import FILE.csv, export
  group          groups of contacts: group add|rm|list NAME, group members NAME [--add C] [--rm C]
  sim            serve one simulated modem on a pty: --pty PATH
  ussd           run a USSD code on a modem: ussd MODEM CODE [ANSWER…] (ussd m1 '*100#')
  decode         decode PDUs and forms: decode pdu HEX [--json], decode pdu --batch --json,
                 decode join, decode xform FILE
  encode         encode sms --to NUMBER --text TEXT (the PDUs Outpost would send),
                 encode xform FILE.xml (WBXML)
  passwd         print the bcrypt hash of a password read from stdin, for [[mqtt.user]]
  config check   validate a config file
  version        print the version

Run "outpost <command> --help" for a command's flags.
`

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest)
	case "send":
		return cmdSend(rest)
	case "show":
		return cmdShow(rest)
	case "retry", "cancel":
		return cmdManage(cmd, rest)
	case "inbox":
		return cmdInbox(rest)
	case "messages":
		return cmdMessages(rest)
	case "mark":
		return cmdMark(rest)
	case "rm":
		return cmdRm(rest)
	case "status":
		return cmdStatus(rest)
	case "modems":
		return cmdModems(rest)
	case "hub":
		return cmdHub(rest)
	case "optout", "topic":
		return cmdPeople(cmd, rest)
	case "ban", "unban", "audit":
		return cmdBans(cmd, rest)
	case "token":
		return cmdTokens(rest) // tokens.go
	case "user":
		return cmdUsers(rest) // users.go
	case "pause", "resume":
		return cmdPause(cmd, rest) // pause.go
	case "stats":
		return cmdStats(rest)
	case "quota":
		return cmdQuota(rest)
	case "contact":
		return cmdContact(rest)
	case "group":
		return cmdGroup(rest)
	case "sim":
		return cmdSim(rest)
	case "ussd":
		return cmdUSSD(rest)
	case "decode":
		return cmdDecode(rest)
	case "encode":
		return cmdEncode(rest)
	case "config":
		return cmdConfig(rest)
	case "passwd":
		return cmdPasswd(rest, os.Stdin, os.Stdout)
	case "version", "--version":
		fs := flag.NewFlagSet("version", flag.ContinueOnError)
		fs.Usage = func() { fmt.Fprintln(fs.Output(), "usage: outpost version\n\nPrints the version.") }
		if _, code := parseArgs(fs, rest, 0, 0); code >= 0 {
			return code
		}
		fmt.Println("outpost", version)
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "outpost: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}
