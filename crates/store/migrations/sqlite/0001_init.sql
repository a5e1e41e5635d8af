-- Ferrocore schema, SQLite. Times are Unix seconds.

CREATE TABLE mutual_auth (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    enabled_at   INTEGER,
    carried_over INTEGER NOT NULL DEFAULT 0
);
INSERT INTO mutual_auth (id, enabled_at, carried_over) VALUES (1, NULL, 0);

-- Invariant: once enabled, mutual authentication can never be disabled, whatever writes here.
CREATE TRIGGER mutual_auth_never_disabled
BEFORE UPDATE ON mutual_auth
WHEN OLD.enabled_at IS NOT NULL AND (NEW.enabled_at IS NULL OR NEW.enabled_at <> OLD.enabled_at)
BEGIN
    SELECT RAISE(ABORT, 'mutual authentication can never be disabled');
END;
CREATE TRIGGER mutual_auth_never_deleted
BEFORE DELETE ON mutual_auth
BEGIN
    SELECT RAISE(ABORT, 'mutual authentication can never be disabled');
END;

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO settings (key, value) VALUES ('sync_tls_enabled', 'true');
INSERT INTO settings (key, value) VALUES ('crl_number', '0');

CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    email         TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE policies (
    name                  TEXT PRIMARY KEY,
    checkin_interval_secs INTEGER NOT NULL,
    cert_lifetime_days    INTEGER NOT NULL,
    renewal_window_days   INTEGER CHECK (renewal_window_days IS NULL OR renewal_window_days BETWEEN 1 AND 60),
    migrate_client        INTEGER NOT NULL DEFAULT 0
);
INSERT INTO policies (name, checkin_interval_secs, cert_lifetime_days, renewal_window_days, migrate_client)
VALUES ('default', 14400, 365, NULL, 0);

CREATE TABLE devices (
    id                  TEXT PRIMARY KEY,
    device_uuid         TEXT NOT NULL UNIQUE,
    username            TEXT NOT NULL,
    platform            TEXT NOT NULL,
    client_kind         TEXT NOT NULL,
    client_version      TEXT NOT NULL,
    mode                TEXT NOT NULL,
    listener            TEXT NOT NULL,
    status              TEXT NOT NULL,
    registered_with_ma  INTEGER NOT NULL,
    registered_at       INTEGER NOT NULL,
    last_checkin_at     INTEGER,
    retired_at          INTEGER,
    current_cert_serial TEXT,
    cert_not_after      INTEGER,
    secret_hash         TEXT,
    policy              TEXT NOT NULL REFERENCES policies(name)
);
CREATE INDEX devices_username ON devices(username);
CREATE INDEX devices_status_listener ON devices(status, listener);

CREATE TABLE certificates (
    serial            TEXT PRIMARY KEY,
    device_id         TEXT REFERENCES devices(id),
    subject           TEXT NOT NULL,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    issued_at         INTEGER NOT NULL,
    status            TEXT NOT NULL,
    revoked_at        INTEGER,
    revocation_reason TEXT,
    der               BLOB NOT NULL
);
CREATE INDEX certificates_device ON certificates(device_id);
CREATE INDEX certificates_revoked ON certificates(status, not_after);

CREATE TABLE checkins (
    id        INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    at        INTEGER NOT NULL,
    listener  TEXT NOT NULL,
    mode      TEXT NOT NULL
);
CREATE INDEX checkins_device_at ON checkins(device_id, at);
