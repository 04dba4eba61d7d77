package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	bsms "github.com/outpost-sms/outpost/bridge/sms"
	"github.com/outpost-sms/outpost/hw"
)

func cmdModems(args []string) int {
	if len(args) > 0 && args[0] == "scan" {
		return cmdModemsScan(args[1:])
	}
	fs := flag.NewFlagSet("modems", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost modems [--json]\n       outpost modems scan [--glob PATTERN]… [--json]\n\n"+
			"Each modem of the running daemon: device, IMEI/ICCID, number, state, signal now\n"+
			"and over the last 24 hours, today's traffic, balance, resets and last error.\n"+
			"modems scan (no daemon needed) lists every serial port: USB VID:PID and serial\n"+
			"number, whether it answers AT, and the IMEI, ICCID and operator behind it.")
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	var ms []bsms.ModemReport
	if code := fetch("modems", mk, "/v1/modems", *asJSON, &ms); code >= 0 {
		return code
	}
	for i, m := range ms {
		if i > 0 {
			fmt.Println()
		}
		fmt.Printf("%s  %s", m.ID, m.State)
		if m.Device != "" {
			fmt.Printf("  %s", printable(m.Device, false))
		}
		if m.Number != "" {
			fmt.Printf("  %s", m.Number)
		}
		fmt.Println()
		if m.IMEI != "" || m.ICCID != "" {
			fmt.Printf("  IMEI %s  ICCID %s\n", printable(m.IMEI, false), printable(m.ICCID, false))
		}
		signal := "unknown"
		if m.SignalDBm != 0 {
			signal = fmt.Sprintf("%d (%d dBm)", m.Signal, m.SignalDBm)
		}
		net := strings.TrimSpace(strings.Join([]string{printable(m.Operator, false), m.Network, m.Registration}, " "))
		fmt.Printf("  signal %s; %s\n", signal, net)
		if t := m.Trend; t.Samples > 0 {
			fmt.Printf("  24h: %s  min %d avg %d max %d (%d samples)\n", t.Spark, t.Min, t.Avg, t.Max, t.Samples)
		}
		fmt.Printf("  today: %d sent (%d parts), %d failed, %d received\n", m.Today.Sent, m.Today.Parts, m.Today.Failed, m.Today.Received)
		if m.Balance != nil {
			// As status prints it: the amount, not the API's JSON.
			b, _ := json.Marshal(map[string]any{"balance": m.Balance})
			fmt.Printf("  balance: %s\n", balanceLine(b))
		}
		if m.Hangs > 0 || m.Resets > 0 {
			fmt.Printf("  hangs %d, resets %d", m.Hangs, m.Resets)
			if m.LastReset != "" {
				fmt.Printf("; last: %s", printable(m.LastReset, false))
				if !m.ResetAt.IsZero() {
					fmt.Printf(" (%s)", m.ResetAt.Local().Format(time.DateTime))
				}
			}
			fmt.Println()
		}
		if m.LastError != "" {
			fmt.Printf("  last error: %s\n", printable(m.LastError, false))
		}
	}
	return 0
}

func cmdModemsScan(args []string) int {
	fs := flag.NewFlagSet("modems scan", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	cfgPath := fs.String("config", "", "also scan where this config's [[modem]] scan patterns point")
	timeout := fs.Duration("timeout", time.Second, "how long each probe command may take")
	var globs []string
	fs.Func("glob", "a pattern of ports to scan (repeatable; default "+strings.Join(hw.DefaultScan, " ")+")", func(v string) error {
		globs = append(globs, v)
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: outpost modems scan [--glob PATTERN]… [--config FILE] [--json]\n\n"+
			"Lists every serial port with its USB VID:PID and serial number, and probes\n"+
			"each one no other program has open (a running daemon's ports are left alone)\n"+
			"for AT, IMEI, ICCID and operator: what a [[modem]]'s imei or iccid needs.")
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	if *cfgPath != "" {
		c, err := loadConfig(*cfgPath)
		if err != nil {
			return fail("modems scan", err)
		}
		for _, m := range c.Modems {
			globs = append(globs, m.Scan...)
		}
	}
	if len(globs) == 0 {
		globs = hw.DefaultScan
	}
	ports, err := hw.Ports(globs)
	if err != nil {
		return fail("modems scan", err)
	}
	for i, p := range ports {
		hs, _ := hw.Holders("/proc", p.Path)
		if len(hs) > 0 {
			names := make([]string, len(hs))
			for j, h := range hs {
				names[j] = h.String()
				if h.Name == "outpost" {
					names[j] += ": a running outpost daemon's modem (outpost modems shows it)"
				}
			}
			ports[i].Busy = "open in " + strings.Join(names, ", ") + "; not probed"
			continue
		}
		pr := hw.Probe(p.Path, 115200, *timeout)
		ports[i].AT, ports[i].Manufacturer, ports[i].Model, ports[i].IMEI, ports[i].IMSI, ports[i].ICCID, ports[i].Operator, ports[i].Error =
			pr.AT, pr.Manufacturer, pr.Model, pr.IMEI, pr.IMSI, pr.ICCID, pr.Operator, pr.Error
	}
	if *asJSON {
		b, _ := json.MarshalIndent(ports, "", "  ")
		fmt.Println(string(b))
		return 0
	}
	if len(ports) == 0 {
		fmt.Printf("no serial ports match %s\n", strings.Join(globs, " "))
		return 0
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PORT\tUSB\tSERIAL\tAT\tMODEL\tIMEI\tICCID\tOPERATOR\tNOTE")
	for _, p := range ports {
		usb, at := "-", "no"
		if p.USB {
			usb = p.VID + ":" + p.PID
		}
		if p.AT {
			at = "yes"
		}
		name := p.Path
		if p.Real != "" {
			name += " (" + p.Real + ")"
		}
		note := p.Busy
		if note == "" {
			note = p.Error
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(name, false), usb, printable(p.Serial, false), at,
			printable(strings.TrimSpace(p.Manufacturer+" "+p.Model), false), printable(p.IMEI, false), printable(p.ICCID, false),
			printable(p.Operator, false), printable(note, false))
	}
	w.Flush()
	fmt.Println("\nIn a [[modem]], imei = \"…\" (or iccid = \"…\") instead of device finds the modem on whatever port it gets.")
	return 0
}
