package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/outpost-sms/outpost/bridge"
	bemail "github.com/outpost-sms/outpost/bridge/email"
	bhttp "github.com/outpost-sms/outpost/bridge/http"
	"github.com/outpost-sms/outpost/bridge/hub"
	bmqtt "github.com/outpost-sms/outpost/bridge/mqtt"
	"github.com/outpost-sms/outpost/bridge/openrosa"
	bsms "github.com/outpost-sms/outpost/bridge/sms"
	"github.com/outpost-sms/outpost/bridge/webhook"
	bxmpp "github.com/outpost-sms/outpost/bridge/xmpp"
	"github.com/outpost-sms/outpost/config"
	"github.com/outpost-sms/outpost/hw"
	"github.com/outpost-sms/outpost/hw/sim"
	"github.com/outpost-sms/outpost/pdu"
	"github.com/outpost-sms/outpost/pdu/xform"
	"github.com/outpost-sms/outpost/store"
)

func loadConfig(path string) (config.Config, error) {
	if path == "" {
		return config.Check("defaults", nil)
	}
	return config.Read(path)
}

func newLogger(level string, w io.Writer) *slog.Logger {
	lv := map[string]slog.Level{"trace": hw.LevelTrace, "debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[level]
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.LevelKey && a.Value.Any().(slog.Level) == hw.LevelTrace {
			a.Value = slog.StringValue("TRACE")
		}
		return a
	}}))
}

func cmdRun(args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "config file (TOML); default $OUTPOST_CONFIG, else the built-in defaults")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost run [--config FILE]\n\nRuns the daemon until SIGINT or SIGTERM.")
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	// Not the installed config: that one is the service's (its unit
	// names it), and a daemon run by hand there would fight it for the
	// data folder and the ports.
	from := ""
	if *cfgPath == "" {
		*cfgPath, from = envConfig()
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		if from != "" {
			err = fmt.Errorf("%w (%s)", err, from)
		}
		fmt.Fprintln(os.Stderr, "outpost:", err)
		return 1
	}
	log := newLogger(cfg.LogLevel, os.Stderr)
	if *cfgPath != "" && cfg.SimulatedByDefault {
		log.Warn("the config lists no [[modem]]: running the simulated modem "+cfg.Modems[0].ID+" (no real SMS go out)", "config", *cfgPath)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := daemon(ctx, cfg, *cfgPath, log); err != nil {
		var ns notStarted
		if errors.As(err, &ns) {
			log.Error("outpost could not start", "err", ns.err)
		} else {
			log.Error("outpost stopped", "err", err)
		}
		return 1
	}
	return 0
}

// daemon runs Outpost until ctx ends. It returns an error, and so the
// process exits 1, when anything it needs fails to start (the data folder,
// the database, the CLI socket, a broker listener): a daemon that runs
// with a part missing would accept messages it can never deliver. A modem
// that is absent is not such a part: it is retried until it comes.
func daemon(ctx context.Context, cfg config.Config, cfgFile string, log *slog.Logger) (err error) {
	running := false
	defer func() {
		if err != nil && !running {
			err = notStarted{err}
		}
	}()
	// The daemon's live heap is small and its garbage comes with every
	// message (an MQTT packet, SQLite's arguments): at Go's default the
	// collector took 13% of the CPU of one device publishing at full
	// speed. Twice the headroom costs about 4 MB of memory. A GOGC the
	// user set wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	// Whatever Outpost creates (database, WAL, socket, pty link) is
	// readable by its user alone: the messages are people's.
	syscall.Umask(0o077)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	// One daemon per data folder, locked before anything in it is opened.
	unlock, err := lockFile(filepath.Join(cfg.DataDir, "outpost.lock"), cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	opts, err := storeOptions(store.Options{Log: log}) // testclock.go
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, filepath.Join(cfg.DataDir, "outpost.db"), opts)
	if err != nil {
		return err
	}
	defer st.Close()

	// Numbers are compared in one form (+<country code><number>): set
	// before any address is read, and the opt-outs, bans and
	// subscriptions stored in another spelling are rewritten in it.
	bridge.SetCountryCode(cfg.SMS.CountryCode)
	router := bridge.New(st, log)
	router.Groups = cfg.Groups
	if _, err := router.CanonicalStored(ctx); err != nil {
		return err
	}
	// Tests only: OUTPOST_RETRY="MIN,MAX" bounds the retry backoff.
	if v := os.Getenv("OUTPOST_RETRY"); v != "" {
		lo, hi, _ := strings.Cut(v, ",")
		a, err1 := time.ParseDuration(lo)
		b, err2 := time.ParseDuration(hi)
		if err := errors.Join(err1, err2); err != nil || a <= 0 || b < a {
			return fmt.Errorf("OUTPOST_RETRY=%q: want MIN,MAX durations: %v", v, err)
		}
		router.RetryMin, router.RetryMax = a, b
	}
	// Cancelled before the wait: on an error return, everything started
	// so far is told to stop, then waited for.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		if err == nil {
			log.Info("outpost stopped", "data_dir", cfg.DataDir)
		}
	}()
	modems := map[string]hw.Modem{}
	// Each modem's radio over time, for outpost modems (from the first
	// status on).
	hist := &bsms.History{Store: st, Log: log, Every: cfg.SMS.HistoryEvery.Duration, Keep: cfg.SMS.HistoryKeep.Duration}
	router.OnModemStatus(hist.Observe)
	wg.Add(1)
	go func() { defer wg.Done(); hist.Run(ctx) }()
	// Modems found by IMEI or ICCID never probe a port another modem is
	// configured on.
	binder := &hw.Binder{}
	for _, mc := range cfg.Modems {
		switch {
		case mc.Type == "sim":
			binder.Claim(mc.ID, filepath.Join(cfg.DataDir, "sim-"+mc.ID+".pty"))
		case mc.Device != "":
			binder.Claim(mc.ID, mc.Device)
		}
	}
	// The simulated modems share one network: each reaches the others'
	// numbers (and the echo subscriber).
	var network *sim.Network
	for _, mc := range cfg.Modems {
		router.ModemIDs = append(router.ModemIDs, mc.ID)
		device := mc.Device
		if mc.Type == "sim" {
			// The simulated modem runs in this process on a pty, so the
			// real serial and AT code drives it.
			if network == nil {
				network = sim.NewNetwork(log.With("component", "sim"))
				if c, err := simSpeed(); err != nil {
					return err
				} else if c != nil {
					network.Now = c.Now
				}
			}
			sm := network.NewModem(mc.Number)
			device = filepath.Join(cfg.DataDir, "sim-"+mc.ID+".pty")
			p, err := sim.OpenPTY(device)
			if err != nil {
				return fmt.Errorf("simulated modem %s: %w", mc.ID, err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.Serve(ctx, sm)
				p.Close()
			}()
			if err := serveSimControl(ctx, &wg, filepath.Join(cfg.DataDir, "sim-"+mc.ID+".control"), sm, log); err != nil {
				log.Warn("simulated modem: no control socket; it runs without faults", "modem", mc.ID, "err", err)
			}
		}
		open := hw.OpenSerial(device, mc.Baud)
		if mc.Type == "serial" && mc.Device == "" {
			open = binder.Opener(mc.ID, hw.Identity{IMEI: mc.IMEI, ICCID: mc.ICCID}, mc.Scan)
		}
		m := hw.Start(hw.Config{
			ID: mc.ID, Device: device, Open: open, PIN: mc.PIN,
			CommandTimeout: mc.CommandTimeout.Duration, SendTimeout: mc.SendTimeout.Duration, SweepInterval: mc.SweepInterval.Duration,
			Log: log, OnStatus: func(s hw.Status) { router.ModemStatus(s.ID, s) },
			Calls:       hw.CallConfig{Hangup: mc.Calls == "hangup", HangupAfter: mc.HangupAfter, HandUp: mc.MissedCallMessage},
			StorageWarn: mc.StorageWarn,
			Heal:        hw.Heal{MaxPerHour: mc.ResetsPerHour},
		})
		defer m.Close()
		modems[mc.ID] = m
	}
	var api *bhttp.Server
	em, mq, err := connectors(cfg, router, log, modems, func(ctx context.Context) (any, error) { return api.Status(ctx) })
	if err != nil {
		return err
	}
	// A route may name an address ("webhook:crm", a [[route]]'s to): its
	// connector must be there, or no inbound message could be stored.
	if err := router.CheckRoutes(); err != nil {
		return err
	}
	// A start with a config unlike the last start's is audited (after
	// the connectors: the hub gets its copy).
	digest, err := configDigest(cfg)
	if err != nil {
		return err
	}
	if _, err := router.AuditConfig(ctx, cfgFile, digest); err != nil {
		return err
	}
	if em != nil {
		if err := em.Listen(); err != nil {
			return err
		}
		defer em.Close()
	}
	api = &bhttp.Server{Socket: filepath.Join(cfg.DataDir, "outpost.sock"), GatewayID: cfg.GatewayID, Version: version, Router: router, Log: log, CanSend: modemCanSend}
	api.ConfigView = func() (any, error) { return configView(&cfg) }
	api.ModemReport = func(ctx context.Context) (any, error) {
		numbers := map[string]string{}
		for _, m := range cfg.Modems {
			numbers[m.ID] = m.Number
		}
		return hist.Report(ctx, router.ModemIDs, numbers, router.Modems())
	}
	// Before anything is served or sent: a restart does not undo a pause.
	if err := router.LoadPaused(ctx); err != nil {
		return err
	}
	if err := api.Listen(); err != nil {
		return err
	}
	if cfg.HTTP.Listen != "" {
		api.TCP = &bhttp.TCP{Addr: cfg.HTTP.Listen, TLSCert: cfg.HTTP.TLSCert, TLSKey: cfg.HTTP.TLSKey, SessionIdle: cfg.HTTP.SessionIdle.Duration}
		if err := api.ListenTCP(); err != nil {
			return err
		}
		log.Info("HTTP API listening", "addr", api.TCPAddr(), "tls", cfg.HTTP.TLSCert != "")
	}
	// Retention: old finished messages and history pruned in small
	// batches. Tests only: OUTPOST_PRUNE_AFTER is when the first run
	// starts (default a minute after start).
	pruner := &bridge.Pruner{Store: st, Log: log, Messages: cfg.Retention.Messages.Duration, Events: cfg.Retention.Events.Duration,
		Audit: cfg.Retention.Audit.Duration}
	if cfg.Hub.URL != "" {
		pruner.AuditHubTopic = hub.AuditTopic(cfg.MQTT.Prefix + "/" + cfg.GatewayID + "/")
	}
	if v := os.Getenv("OUTPOST_PRUNE_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("OUTPOST_PRUNE_AFTER=%q: want a duration: %v", v, err)
		}
		pruner.First = d
	}
	api.Pruner = pruner
	wg.Add(1)
	go func() { defer wg.Done(); pruner.Run(ctx) }()

	if n := hubWithoutURL(cfg); n != "" {
		log.Warn(n)
	}
	if cfg.Hub.URL == "" {
		// Deliveries to the hub from a run that had one wait for the
		// next: say so, or they wait unseen.
		if q, err := router.QueueDepths(ctx); err == nil && q["hub"][store.Queued] > 0 {
			log.Warn("messages wait for the hub, but hub.url is not set: they go when a hub is configured again (outpost cancel ID drops one)",
				"count", q["hub"][store.Queued])
		}
	}
	errc := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errc <- router.Run(ctx) }()
	go func() { defer wg.Done(); errc <- api.Run(ctx) }()
	up := []any{"gateway_id", cfg.GatewayID, "data_dir", cfg.DataDir, "socket", api.Socket, "modems", len(modems)}
	if mq != nil {
		// Ready once the broker listens, or failed to.
		select {
		case <-mq.Ready():
		case err := <-errc:
			return stopped(ctx, err)
		case <-ctx.Done():
			return nil
		}
		if err := mq.StartErr(); err != nil {
			return err
		}
		if a := mq.Addr(); a != "" {
			up = append(up, "mqtt", a, "topics", cfg.MQTT.Prefix+"/"+cfg.GatewayID+"/#")
		}
		if cfg.Hub.URL != "" {
			up = append(up, "hub", bridge.RedactURLs(cfg.Hub.URL))
		}
	}
	if em != nil && em.Addr() != "" {
		up = append(up, "smtp", em.Addr())
	}
	log.Info("outpost running", up...)
	running = true
	// A Type=notify unit counts as started from here: the store is open
	// and the socket, the broker and the HTTP API listen.
	if err := sdNotify("READY=1\nSTATUS=running"); err != nil {
		log.Warn("could not tell systemd the daemon is ready", "err", err)
	}
	// Before the parts are stopped (the defers run in reverse), so that
	// systemd waits for the exit instead of seeing a daemon that hangs.
	defer sdNotify("STOPPING=1")
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return stopped(ctx, err)
	}
}

// notStarted is a daemon's error before it was running.
type notStarted struct{ err error }

func (n notStarted) Error() string { return n.err.Error() }
func (n notStarted) Unwrap() error { return n.err }

// stopped is the daemon's error when a part of it returned: none while
// ctx is ending (a stop was asked for), else what the part said.
func stopped(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return nil
	case err == nil || errors.Is(err, context.Canceled):
		return errors.New("stopped unexpectedly")
	}
	return err
}

func cmdSim(args []string) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	path := fs.String("pty", "", "path of the symlink to the simulated modem's device (required)")
	number := fs.String("number", "+15555550123", "the simulated modem's own number")
	delay := fs.Duration("echo-delay", 0, "delay of the echo's answer and of status reports")
	level := fs.String("log-level", "info", "log level (trace shows AT traffic)")
	control := fs.Bool("control", false, "read lines from stdin: \"deliver HEX\" hands the modem an SMS (a PDU with SMSC prefix) as if the network sent it; \"report HEX\" a status report; \"network off\" / \"network on\" takes the network away (not registered, sends refused with +CMS ERROR: 331) and brings it back; \"send-error CODE\" makes AT+CMGS answer +CMS ERROR: CODE (512: SMSC busy; 0: off); \"fail-delete N\" makes the next N AT+CMGD fail; "+simFaultHelp+"; "+simControlCallsStore+"; \"balance N\" sets the credit *100# answers; \"ussd-delay DURATION\" delays the network's USSD answers; \"ussd-packed on\" makes the modem want USSD strings as packed GSM 7-bit hex, as Huawei's do")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost sim --pty PATH\n\nServes one simulated GSM modem (and a network with the echo\nsubscriber "+sim.EchoNumber+") at PATH until killed.")
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	if *path == "" {
		return usageError(fs, "--pty PATH is required")
	}
	if err := pdu.ValidateNumber(*number); err != nil {
		return usageError(fs, fmt.Sprintf("--number %q: %v", *number, err))
	}
	log := newLogger(*level, os.Stderr)
	network := sim.NewNetwork(log)
	network.EchoDelay = *delay
	m := network.NewModem(*number)
	// One simulator per path: a second would take the link over from
	// the first while a client still talks to it.
	unlock, err := lockFile(*path+".lock", *path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "outpost sim:", err)
		return 1
	}
	defer unlock()
	p, err := sim.OpenPTY(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "outpost sim:", err)
		return 1
	}
	plug := &simPlug{cur: p, plugged: make(chan *sim.PTY, 1)}
	defer plug.close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("simulated modem ready", "pty", *path, "number", *number, "echo", sim.EchoNumber)
	if *control {
		go func() {
			sc := bufio.NewScanner(os.Stdin)
			sc.Buffer(make([]byte, 64<<10), 64<<10)
			for sc.Scan() {
				simControlLine(m, plug, *path, sc.Text(), log)
			}
		}()
	}
	for {
		err := p.Serve(ctx, m)
		if ctx.Err() != nil {
			return 0
		}
		if !plug.isUnplugged() {
			fmt.Fprintln(os.Stderr, "outpost sim:", err)
			return 1
		}
		log.Info("simulated modem unplugged")
		select {
		case p = <-plug.plugged:
			log.Info("simulated modem plugged in", "pty", p.Path)
		case <-ctx.Done():
			return 0
		}
	}
}

// simFault changes one of a simulated modem's faults (outpost sim --control).
func simFault(m *sim.Modem, verb, arg string) error {
	f := m.Faults()
	switch verb {
	case "balance", "ussd-delay", "ussd-packed":
		return simUSSD(m, verb, arg) // ussd.go
	case "network":
		if arg != "on" && arg != "off" {
			return fmt.Errorf("network %q: want on or off", arg)
		}
		f.NoNetwork = arg == "off"
	default:
		n, err := strconv.Atoi(arg)
		if err != nil || n < 0 {
			return fmt.Errorf("%s %q: want a number", verb, arg)
		}
		if verb == "send-error" {
			f.SendError = n
		} else {
			f.FailDeletes = n
		}
	}
	m.SetFaults(f)
	return nil
}

const configUsage = "usage: outpost config check FILE\n       outpost config show [--json]\n\ncheck validates FILE; exits 0 when it is good, 1 with every problem otherwise.\nshow prints the config the running daemon uses (defaults filled in, secrets masked)."

func cmdConfig(args []string) int {
	switch {
	case len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help"):
		fmt.Println(configUsage)
		return 0
	case len(args) > 0 && args[0] == "show":
		return cmdConfigShow(args[1:]) // configview.go
	case len(args) == 0 || args[0] != "check":
		fmt.Fprintln(os.Stderr, configUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), configUsage) }
	pos, code := parseArgs(fs, args[1:], 1, 1)
	if code >= 0 {
		return code
	}
	c, err := loadConfig(pos[0])
	if err != nil && !config.Decoded(err) {
		fmt.Fprintln(os.Stderr, strings.TrimSpace(err.Error()))
		return exitFailure
	}
	// The routes, as the daemon would build them: an address no
	// configured connector delivers to is refused here too, also when
	// the rest of the file has problems (every problem at once). A
	// connector the invalid values keep from being built is already
	// among those problems: its routes are not checked.
	if built, rerr := checkRoutes(c); rerr != nil && (err == nil || built) {
		if err == nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", pos[0], strings.ReplaceAll(rerr.Error(), "\n", "\n  "))
			return exitFailure
		}
		err = fmt.Errorf("%s\n  %s", strings.TrimSpace(err.Error()), strings.ReplaceAll(rerr.Error(), "\n", "\n  "))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, strings.TrimSpace(err.Error()))
		return exitFailure
	}
	if n := hubWithoutURL(c); n != "" {
		fmt.Fprintf(os.Stderr, "note: %s: %s\n", pos[0], n)
	}
	if c.SimulatedByDefault {
		fmt.Fprintf(os.Stderr, "note: %s lists no [[modem]]: the simulated modem %s is used (no real SMS go out); add a [[modem]] with type = \"serial\" for a real one\n", pos[0], c.Modems[0].ID)
	}
	fmt.Println(pos[0] + ": ok")
	return 0
}

// modemCanSend says whether a modem's status (Router.Modems) is one that
// can send now: ready, on the network, and not paused for its balance (a
// paused modem carries only alerts).
func modemCanSend(v any) bool {
	s, ok := v.(hw.Status)
	return ok && s.CanSend() && (s.Balance == nil || s.Balance.Paused == "")
}

// connectors builds every connector cfg configures and adds it to router,
// without starting any (the email connector does not listen yet): what
// the daemon runs, and what outpost config check routes through as a
// dry run. It sets the router's routes: the defaults (mqtt when the
// connector runs, openrosa for forms) and the config's [[route]]s.
//
// status is the daemon's status (GET /v1/status), for XMPP's admins.
func connectors(cfg config.Config, router *bridge.Router, log *slog.Logger, modems map[string]hw.Modem, status func(context.Context) (any, error)) (em *bemail.Connector, mq *bmqtt.Connector, err error) {
	// The MQTT connector serves the local broker; with no local listener
	// it still runs with a hub link (pass-through, [[hub.subscribe]], the
	// hub's sends). Every inbound message goes to the hub too: a
	// delivery of the hub connector.
	withMQTT := cfg.MQTT.Listen != "" || cfg.Hub.URL != ""
	if withMQTT {
		router.Routes = []string{"mqtt"}
		router.FormRoutes = []string{"mqtt"}
	}
	if cfg.Hub.URL != "" {
		router.Routes = append(router.Routes, "hub")
		router.FormRoutes = append(router.FormRoutes, "hub")
	}
	for _, r := range cfg.Routes {
		router.Rules = append(router.Rules, bridge.Route{Channel: r.Channel, From: r.From, Modem: r.Modem, Keyword: r.Keyword, Form: r.Form,
			To: r.To, Reply: r.Reply, Tag: r.Tag, Stop: r.Stop})
	}
	router.ReplyLimit = cfg.RouteReplyLimit
	router.ReplyWindow = cfg.RouteReplyWindow.Duration
	router.Keywords = keywordSets(cfg.Keywords)
	if router.Quota, err = quotaPolicy(cfg.Quota); err != nil {
		return nil, nil, err
	}
	smsConn := bsms.New(router, modems)
	smsConn.CrashAt = os.Getenv("OUTPOST_CRASH_AT")
	configureRouting(cfg, router, smsConn)
	smsConn.ReassemblyTimeout = cfg.SMS.ReassemblyTimeout.Duration
	smsConn.Languages = map[string][]int{}
	for prefix, name := range cfg.SMS.NationalLanguages {
		nli, err := pdu.Language(name)
		if err != nil {
			return nil, nil, fmt.Errorf("sms.national_languages[%q]: %w", prefix, err)
		}
		smsConn.Languages[prefix] = append(smsConn.Languages[prefix], nli)
	}
	if cfg.XForm.Enabled {
		fo := &bsms.FormOptions{Port: cfg.XForm.Port, Options: xform.Options{MaxSize: cfg.XForm.MaxSize}}
		for _, f := range cfg.XForm.Forms {
			fo.Forms = append(fo.Forms, xform.Form{ID: f.ID, Version: f.Version, Prefix: f.Prefix, Delimiter: f.Delimiter, Fields: f.Fields})
		}
		smsConn.Forms = fo
	}
	if smsConn.Balances, err = balanceChecks(cfg); err != nil { // ussd.go
		return nil, nil, err
	}
	router.Add(smsConn)
	if or := cfg.XForm.OpenRosa; or.URL != "" {
		router.Add(openrosa.New(openrosa.Options{URL: or.URL, User: or.User, Password: or.Password, Timeout: or.Timeout.Duration}))
		router.FormRoutes = append(router.FormRoutes, "openrosa")
	}
	// Email: mail to <number>@domain in, SMS answers out as mail.
	if e := cfg.Email; e.Listen != "" || e.SMTP != "" {
		users := map[string]string{}
		for _, u := range e.Accounts {
			users[u.Name] = u.PasswordHash
		}
		var err error
		em, err = bemail.New(bemail.Options{Listen: e.Listen, Domain: e.Domain, Allow: e.Allow, MaxParts: e.MaxParts, Parts: smsConn.Parts,
			TLSCert: e.TLSCert, TLSKey: e.TLSKey, Users: users,
			SMTP: e.SMTP, User: e.User, Password: e.Password, RequireTLS: e.RequireTLS, CAFile: e.CAFile, ConversationTTL: e.ConversationTTL.Duration,
			Log: log, CrashAt: os.Getenv("OUTPOST_CRASH_AT"),
			SubjectTemplate: e.SubjectTemplate, SubjectPrefix: e.Subject == "prefix"}, router)
		if err != nil {
			return nil, nil, err
		}
		router.Add(em)
	}
	// XMPP: users chat with Outpost's account to send SMS and get the
	// answers; admins run the box.
	if x := cfg.XMPP; x.JID != "" {
		xo := bxmpp.Options{JID: x.JID, Password: x.Password, Server: x.Server, DirectTLS: x.DirectTLS, CAFile: x.CAFile,
			MaxParts: x.MaxParts, Parts: smsConn.Parts, ConversationTTL: x.ConversationTTL.Duration,
			ReconnectMax: x.ReconnectMax.Duration, PingEvery: x.PingEvery.Duration, Status: status, Log: log,
			ModemsReady: func() (ready, total int) {
				for id, v := range router.Modems() {
					if modemCanSend(v) && !router.Paused(id) {
						ready++
					}
				}
				return ready, len(cfg.Modems)
			}}
		for _, u := range x.Users {
			xo.Users = append(xo.Users, bxmpp.User{JID: u.JID, Role: u.Role})
		}
		xc, err := bxmpp.New(xo, router)
		if err != nil {
			return nil, nil, err
		}
		router.Add(xc)
	}
	// Webhooks: one connector POSTs the events each [[webhook]] subscribes
	// to; their deliveries are created with the events themselves.
	if len(cfg.Webhooks) > 0 {
		wo := webhook.Options{GatewayID: cfg.GatewayID, Log: log, ModemNumbers: map[string]string{}}
		for _, m := range cfg.Modems {
			wo.ModemNumbers[m.ID] = m.Number
		}
		for _, w := range cfg.Webhooks {
			wo.Hooks = append(wo.Hooks, webhook.Hook{Name: w.Name, URL: w.URL, Events: w.Events, Secret: w.Secret, Timeout: w.Timeout.Duration})
		}
		router.Add(webhook.New(wo, router))
	}
	limits := store.HubLimits{MaxMessages: cfg.Hub.MaxMessages, MaxBytes: cfg.Hub.MaxBytes, DropOldest: cfg.Hub.WhenFull != "refuse"}
	numbers := map[string]string{}
	for _, m := range cfg.Modems {
		numbers[m.ID] = m.Number
	}
	var link *hub.Connector
	if cfg.Hub.URL != "" {
		ho := hub.Options{URL: cfg.Hub.URL, Username: cfg.Hub.Username, Password: cfg.Hub.Password, ClientID: cfg.Hub.ClientID,
			KeepAlive: cfg.Hub.KeepAlive.Duration, Window: cfg.Hub.Window, MaxAge: cfg.Hub.MaxAge.Duration,
			CAFile: cfg.Hub.CAFile, CertFile: cfg.Hub.CertFile, KeyFile: cfg.Hub.KeyFile, Limits: limits,
			Base: cfg.MQTT.Prefix + "/" + cfg.GatewayID + "/", ModemNumbers: numbers, Log: log}
		if ho.ClientID == "" {
			ho.ClientID = cfg.GatewayID
		}
		for _, f := range cfg.Hub.Subscribe {
			ho.Subscribe = append(ho.Subscribe, hub.Rule{Topic: f.Topic, QoS: byte(f.QoS), Prefix: f.Prefix})
		}
		link = hub.New(ho, router)
		router.Add(link)
	}
	if withMQTT {
		ho := bmqtt.HubOptions{Limits: limits}
		if link != nil {
			ho.Link = link
		}
		for _, f := range cfg.Hub.Forward {
			ho.Forward = append(ho.Forward, bmqtt.Forward{Topic: f.Topic, QoS: byte(f.QoS), Prefix: f.Prefix})
		}
		mo := bmqtt.Options{Listen: cfg.MQTT.Listen, Prefix: cfg.MQTT.Prefix, GatewayID: cfg.GatewayID,
			AllowAnonymous: cfg.MQTT.AllowAnonymous, Log: log, Hub: ho,
			TLSListen: cfg.MQTT.TLSListen, TLSCert: cfg.MQTT.TLSCert, TLSKey: cfg.MQTT.TLSKey,
			WebSocketListen: cfg.MQTT.WebSocketListen, MaxClients: cfg.MQTT.MaxClients, MaxPacketSize: cfg.MQTT.MaxPacketSize}
		mo.ModemNumbers = numbers
		for _, u := range cfg.MQTT.Users {
			mo.Users = append(mo.Users, bmqtt.User{Name: u.Name, Hash: u.PasswordHash})
		}
		for _, r := range cfg.MQTT.ACL {
			mo.ACL = append(mo.ACL, bmqtt.ACL{User: r.User, Topic: r.Topic, Access: r.Access})
		}
		mq = bmqtt.New(mo, router)
		router.Add(mq)
		if link != nil {
			link.SetLocal(mq)
		}
	}
	return em, mq, checkAlerts(cfg, router)
}

// configDigest identifies the config in effect (the defaults and the
// file's values): the first 16 hex digits of an HMAC-SHA-256 of its JSON
// under a key of this box's (config-digest.key in the data folder, made
// at the first start). The config holds passwords: a plain hash of it,
// in an audit log that goes to the hub, would let whoever reads the log
// and knows the rest of the file try passwords against it.
func configDigest(cfg config.Config) (string, error) {
	path := filepath.Join(cfg.DataDir, "config-digest.key")
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) || err == nil && len(key) != 32 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return "", err
		}
		err = os.WriteFile(path, key, 0o600)
	}
	if err != nil {
		return "", fmt.Errorf("config digest key: %w", err)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(b)
	return "hmac-sha256:" + hex.EncodeToString(mac.Sum(nil)[:8]), nil
}

// hubWithoutURL says what [hub] rules do without hub.url, or "".
func hubWithoutURL(c config.Config) string {
	switch {
	case c.Hub.URL != "":
		return ""
	case len(c.Hub.Forward) > 0:
		return "[[hub.forward]] without hub.url: messages on those topics are kept in the hub queue (within hub.max_messages and max_bytes) until a hub.url is set"
	case len(c.Hub.Subscribe) > 0:
		return "[[hub.subscribe]] without hub.url: there is no hub to subscribe to"
	}
	return ""
}

// checkRoutes builds the connectors and the router the way the daemon
// does, as a dry run (no store, no modem, nothing listens or runs), and
// says what is wrong with the routes (Router.CheckRoutes).
// It says too whether the connectors could be built: when they could
// not, the routes were not checked.
func checkRoutes(cfg config.Config) (built bool, err error) {
	bridge.SetCountryCode(cfg.SMS.CountryCode)
	router := bridge.New(nil, nil)
	router.Groups = cfg.Groups
	if _, _, err := connectors(cfg, router, slog.New(slog.DiscardHandler), nil, nil); err != nil {
		return false, err
	}
	return true, router.CheckRoutes()
}
