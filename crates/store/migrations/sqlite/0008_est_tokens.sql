-- One-time EST enrollment tokens (RFC 7030 simpleenroll without a password). Only the
-- SHA-256 of the token is stored; it is consumed in the same transaction as the certificate
-- it authorised is recorded.
CREATE TABLE est_tokens (
    id             TEXT PRIMARY KEY,
    token_hash     TEXT NOT NULL UNIQUE,
    username       TEXT NOT NULL,
    platform       TEXT NOT NULL,
    device_uuid    TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    used_by_serial TEXT
);
