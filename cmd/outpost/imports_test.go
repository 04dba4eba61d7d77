package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/outpost-sms/outpost"

// allowedImports is the dependency direction of ARCHITECTURE.md:
// cmd → bridge/* → bridge → store → store/clock; bridge/sms → hw, pdu; pdu, hw,
// config and store/clock (the time rules) import nothing of ours (hw/sim may
// import pdu). The key is a
// package (or "bridge/*" for every connector); the values are what it may
// import of ours.
var allowedImports = map[string][]string{
	"config":      {},
	"store/clock": {},
	"store":       {"store/clock"},
	"pdu":         {},
	"pdu/*":       {"pdu"},
	"hw":          {},
	"hw/sim":      {"pdu"},
	"bridge":      {"store", "store/clock"},
	"bridge/*":    {"bridge", "store", "store/clock"},
	// The SMS connector is where modems meet the codec.
	"bridge/sms": {"bridge", "store", "store/clock", "hw", "pdu", "pdu/xform"},
	// The XMPP tests' harness (a real Prosody, slixmpp clients) is for
	// tests only and stands alone.
	"bridge/xmpp/xmpptest": {},
}

func rule(pkg string) ([]string, bool) {
	if r, ok := allowedImports[pkg]; ok {
		return r, true
	}
	if i := strings.LastIndex(pkg, "/"); i > 0 {
		if r, ok := allowedImports[pkg[:i]+"/*"]; ok {
			return r, true
		}
	}
	return nil, false
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/")
		if strings.HasPrefix(pkg, "cmd/") {
			continue // cmd wires everything
		}
		allowed, ok := rule(pkg)
		if !ok {
			t.Errorf("package %s has no rule in allowedImports: add it to the architecture first", pkg)
			continue
		}
		checked++
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			ok := false
			for _, a := range allowed {
				ok = ok || dep == a
			}
			if !ok {
				t.Errorf("%s imports %s, against the dependency direction (allowed: %v)", pkg, dep, allowed)
			}
		}
	}
	if checked < 8 {
		t.Errorf("checked only %d packages; go list output:\n%s", checked, out)
	}
}

func TestImportRulesCatchViolations(t *testing.T) {
	for pkg, dep := range map[string]string{"store": "bridge", "bridge": "hw", "bridge/mqtt": "pdu", "bridge/hub": "bridge/mqtt", "hw": "pdu", "pdu/xform": "store", "store/clock": "store"} {
		allowed, _ := rule(pkg)
		for _, a := range allowed {
			if a == dep {
				t.Errorf("rule lets %s import %s", pkg, dep)
			}
		}
	}
}
