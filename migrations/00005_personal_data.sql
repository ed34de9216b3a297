-- Keys for crypto-shredding (docs/design.md, "Personal data"): fields marked personal are stored
-- encrypted with their subject's key, and forgetting the subject deletes the key. A forgotten
-- subject keeps its row with key NULL (a tombstone), so that no later write can make it a new
-- key and nobody has to guess whether a missing key was forgotten or never made.

-- +goose Up
CREATE TABLE personal_keys (
    subject      text        PRIMARY KEY CHECK (subject <> '' AND length(subject) <= 256),
    -- a random AES-256 key; NULL once the subject was forgotten
    key          bytea       CHECK (key IS NULL OR length(key) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    forgotten_at timestamptz,
    CHECK ((key IS NULL) = (forgotten_at IS NOT NULL))
);

-- +goose Down
DROP TABLE personal_keys;
