package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/strata-es/strata/internal/service/auth"
)

// minSecretBytes is the shortest HS256 secret accepted: RFC 7518 asks for a key at least as
// long as the hash (256 bits).
const minSecretBytes = 32

// AuthConfigured reports whether any credential is configured.
func (c *Config) AuthConfigured() bool {
	return c.JWTSecretFile != "" || len(c.JWTPublicKeys) > 0 || len(c.APIKeys) > 0
}

// Authenticator builds the authenticator the settings describe, reading the secret and key
// files; its errors name the setting at fault and never the secret.
func (c *Config) Authenticator() (*auth.Authenticator, error) {
	var opts auth.Options
	var errs []error
	if c.JWTSecretFile != "" {
		secret, err := os.ReadFile(c.JWTSecretFile)
		secret = bytes.TrimRight(secret, "\r\n")
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--jwt-secret-file: %w", err))
		case len(secret) < minSecretBytes:
			errs = append(errs, fmt.Errorf("--jwt-secret-file: the secret is %d bytes; HS256 needs at least %d", len(secret), minSecretBytes))
		default:
			opts.HS256Secret = secret
		}
	}
	for _, path := range c.JWTPublicKeys {
		k, err := auth.LoadPublicKey(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("--jwt-public-keys: %w", err))
			continue
		}
		opts.PublicKeys = append(opts.PublicKeys, k)
	}
	for _, entry := range c.APIKeys {
		k, err := auth.ParseAPIKey(entry)
		if err != nil {
			errs = append(errs, fmt.Errorf("--api-keys: %w", err))
			continue
		}
		opts.APIKeys = append(opts.APIKeys, k)
	}
	opts.Issuer, opts.Audience = c.JWTIssuer, c.JWTAudience
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return auth.New(opts), nil
}
