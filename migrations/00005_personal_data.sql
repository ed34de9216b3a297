-- Keys for crypto-shredding (docs/design.md, "Personal data"): fields marked personal are stored
-- encrypted with their subject's key, and forgetting the subject deletes the key. A forgotten
-- subject keeps its row with key NULL (a tombstone), so that no later write can make it a new
-- key and nobody has to guess whether a missing key was forgotten or never made.

-- +goose Up
CREATE TABLE personal_keys (
    subject      text        PRIMARY KEY CHECK (subject <> '' AND length(subject) <= 256),
    -- a random AES-256 key, or (wrapped) that key sealed with the server's master key
    -- (--personal-data-key-file): nonce, ciphertext and tag; NULL once the subject was forgotten
    key          bytea,
    wrapped      boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    forgotten_at timestamptz,
    CHECK (key IS NULL OR length(key) = CASE WHEN wrapped THEN 60 ELSE 32 END),
    CHECK ((key IS NULL) = (forgotten_at IS NOT NULL))
);

-- +goose Down
DROP TABLE personal_keys;
