package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/outpost-sms/outpost/config"
)

// systemConfig is where the package installs the service's config: on an
// installed box the CLI finds the service without flags.
var systemConfig = "/etc/outpost/outpost.toml"

// configEnv names a config file for every command; set but empty, it
// means the defaults (./outpost-data) even where the package is installed.
const configEnv = "OUTPOST_CONFIG"

// clientConfig is the config whose data folder a command that talks to
// the daemon uses: --config, else $OUTPOST_CONFIG, else the installed
// one when present, else the defaults.
func clientConfig(flagPath string) (config.Config, error) {
	path, from := flagPath, ""
	if path == "" {
		path, from = envConfig()
	}
	if path == "" && from == "" {
		switch _, err := os.Stat(systemConfig); {
		case err == nil:
			path, from = systemConfig, "the installed service's config"
		case !errors.Is(err, fs.ErrNotExist):
			return config.Config{}, fmt.Errorf("%s: %w (give --config or --data-dir)", systemConfig, err)
		}
	}
	cfg, err := loadConfig(path)
	switch {
	case err == nil || from == "":
	case errors.Is(err, fs.ErrPermission) && path == systemConfig:
		err = fmt.Errorf("%w (%s: run as root or as the outpost user, or give --data-dir)", err, from)
	default:
		err = fmt.Errorf("%w (%s)", err, from)
	}
	return cfg, err
}

// envConfig is $OUTPOST_CONFIG when set (path "" when set empty) and
// where the path came from for errors; from is "" when it is not set.
func envConfig() (path, from string) {
	v, ok := os.LookupEnv(configEnv)
	if !ok {
		return "", ""
	}
	return v, "from $" + configEnv
}
