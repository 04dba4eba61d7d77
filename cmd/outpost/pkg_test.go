package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/config"
)

// TestPackagedConfig: the config the package installs passes the checks
// as it is (the simulated modem, data where the unit lets the service
// write) and with its examples uncommented; the unit runs it from where
// the CLI looks for it.
func TestPackagedConfig(t *testing.T) {
	raw, err := os.ReadFile("../../scripts/packaging/outpost.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Check("outpost.toml", raw)
	if err != nil {
		t.Fatalf("as installed: %v", err)
	}
	if !c.SimulatedByDefault {
		t.Errorf("as installed it should run the simulated modem: %+v", c.Modems)
	}
	unit, err := os.ReadFile("../../scripts/packaging/outpost.service")
	if err != nil {
		t.Fatal(err)
	}
	state := regexp.MustCompile(`(?m)^StateDirectory=(\S+)$`).FindSubmatch(unit)
	if state == nil || filepath.Join("/var/lib", string(state[1])) != c.DataDir {
		t.Errorf("data_dir %q is not the unit's StateDirectory %q", c.DataDir, state)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/outpost run --config "+systemConfig+"\n") {
		t.Errorf("the unit does not run %s", systemConfig)
	}

	// Every commented example line ("#key = …", "#[table]") uncommented;
	// the prose comments ("# …") stay.
	examples := regexp.MustCompile(`(?m)^#([\[a-z])`).ReplaceAll(raw, []byte("$1"))
	if string(examples) == string(raw) {
		t.Fatal("no commented examples found")
	}
	c, err = config.Check("outpost.toml (examples)", examples)
	if err != nil {
		t.Fatalf("with its examples: %v\n%s", err, examples)
	}
	if len(c.Modems) != 1 || c.Modems[0].Type != "serial" || !strings.HasPrefix(c.Modems[0].Device, "/dev/outpost/") || c.HTTP.Listen == "" {
		t.Errorf("with its examples: modems %+v, http %+v", c.Modems, c.HTTP)
	}
}
