package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/outpost-sms/outpost/bridge"
	"github.com/outpost-sms/outpost/config"
)

// secretKeys are the settings whose values GET /v1/config masks: what
// they hold lets one log in somewhere (the hub, the relay, XMPP, the
// SIM) or sign as Outpost (a webhook's secret).
var secretKeys = map[string]bool{"password": true, "password_hash": true, "secret": true, "pin": true}

// configView is the config the daemon runs as GET /v1/config shows it,
// keyed as in the file (defaults filled in): an admin sees what is in
// effect, not what the file says, without any secret (a password, a
// hash, the PIN, a URL's credentials).
func configView(cfg *config.Config) (map[string]any, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
		return nil, err
	}
	var m map[string]any
	if _, err := toml.Decode(buf.String(), &m); err != nil {
		return nil, err
	}
	maskSecrets(m)
	return m, nil
}

func maskSecrets(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && secretKeys[k] && s != "" {
				v[k] = "xxxxx"
				continue
			}
			v[k] = maskSecrets(x)
		}
	case []map[string]any:
		for _, x := range v {
			maskSecrets(x)
		}
	case []any:
		for i, x := range v {
			v[i] = maskSecrets(x)
		}
	case string:
		if strings.Contains(v, "://") {
			return bridge.RedactURLs(v)
		}
	}
	return v
}

// cmdConfigShow prints the running daemon's config (GET /v1/config): as
// TOML, the file's own form, or as its JSON with --json.
func cmdConfigShow(args []string) int {
	fs := flag.NewFlagSet("config show", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	mk := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), configUsage)
		fs.PrintDefaults()
	}
	if _, code := parseArgs(fs, args, 0, 0); code >= 0 {
		return code
	}
	c, err := mk()
	if err != nil {
		return fail("config show", err)
	}
	var raw json.RawMessage
	if err := c.do("GET", "/v1/config", nil, &raw); err != nil {
		return fail("config show", err)
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return 0
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return fail("config show", err)
	}
	if err := toml.NewEncoder(os.Stdout).Encode(m); err != nil {
		return fail("config show", err)
	}
	return 0
}
