-- SCEP (RFC 8894): challenge passwords and answered transactions.

-- One-time challenges, created per registration by the admin. Only the SHA-256 of the
-- challenge is stored; it is consumed in the transaction that records the certificate.
CREATE TABLE scep_challenges (
    hash        TEXT PRIMARY KEY,
    username    TEXT NOT NULL,
    platform    TEXT NOT NULL,
    device_uuid TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    consumed_at INTEGER,
    device_id   TEXT
);
CREATE INDEX scep_challenges_expiry ON scep_challenges(expires_at);

-- At most one static (reusable) challenge per enrollment configuration.
CREATE TABLE scep_static_challenges (
    config     TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    username   TEXT NOT NULL,
    platform   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Every certificate issued through SCEP. `request_hash` (SHA-256 over transactionID, signer
-- certificate and CSR) identifies a request, so a retransmission is answered with the same
-- certificate; a GetCertInitial poll gets the latest one of its transactionID. (The
-- transactionID alone is not enough: clients derive it from the key, which a renewal may keep.)
CREATE TABLE scep_transactions (
    request_hash   TEXT PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    cert_serial    TEXT NOT NULL REFERENCES certificates(serial),
    device_id      TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX scep_transactions_tx ON scep_transactions(transaction_id, created_at);
