package config

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
)

// PersonalDataKey reads the master key that wraps the keys of personal data
// (--personal-data-key-file): 64 hexadecimal digits, as `openssl rand -hex 32` writes them. It
// returns nil when no file is configured.
func (c *Config) PersonalDataKey() ([]byte, error) {
	if c.PersonalDataKeyFile == "" {
		return nil, nil
	}
	text, err := os.ReadFile(c.PersonalDataKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--personal-data-key-file: %w", err)
	}
	text = bytes.TrimSpace(text)
	key := make([]byte, hex.DecodedLen(len(text)))
	if n, err := hex.Decode(key, text); err != nil || n != 32 {
		return nil, fmt.Errorf("--personal-data-key-file: %s must hold 64 hexadecimal digits (a 256-bit key, e.g. from `openssl rand -hex 32`)", c.PersonalDataKeyFile)
	}
	return key, nil
}
