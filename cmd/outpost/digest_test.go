package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-sms/outpost/config"
)

// The config's digest in the audit log is keyed by the box: the same
// config gives the same digest on one box across starts, another on
// another box, and never the plain hash of the config (which holds
// passwords: a plain hash would let a reader of the hub's audit log try
// passwords against it). The key is the user's alone.
func TestConfigDigestKeyed(t *testing.T) {
	cfg := config.Default()
	cfg.Hub.Password = "secret"
	cfg.DataDir = t.TempDir()
	a, err := configDigest(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := configDigest(cfg); again != a {
		t.Errorf("the same config on the same box: %s then %s", a, again)
	}
	b, _ := json.Marshal(cfg)
	sum := sha256.Sum256(b)
	if strings.Contains(a, hex.EncodeToString(sum[:8])) {
		t.Errorf("digest %s is the config's plain SHA-256", a)
	}
	if st, err := os.Stat(filepath.Join(cfg.DataDir, "config-digest.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the key: %v, %v", st, err)
	}
	// Another box (another key) gives another digest of the same config.
	os.Remove(filepath.Join(cfg.DataDir, "config-digest.key"))
	if d, _ := configDigest(cfg); d == a {
		t.Errorf("another key gives the same digest %s", d)
	}
}
