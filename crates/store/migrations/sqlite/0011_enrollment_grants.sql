-- One-time enrollment grants: the SCEP challenges (0009 `scep_challenges`) and EST tokens
-- (0008 `est_tokens`) become one table. A grant is a secret shown once (only its SHA-256 is
-- stored), bound to a user, a platform and optionally a device UUID, with an expiry; it is
-- accepted by the protocol it was created for only and consumed in the transaction that
-- records the certificate it paid for. An administrator may revoke an unused grant.
-- Exactly one state holds: revoked (revoked_at), consumed (consumed_at), expired
-- (expires_at <= now), else active; revoked and consumed exclude each other.
-- Static SCEP challenges (reusable, per enrollment configuration) stay in
-- `scep_static_challenges`.
CREATE TABLE enrollment_grants (
    id                 TEXT PRIMARY KEY,
    secret_hash        TEXT NOT NULL,
    protocol           TEXT NOT NULL CHECK (protocol IN ('scep', 'est')),
    username           TEXT NOT NULL,
    platform           TEXT NOT NULL,
    device_uuid        TEXT,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    consumed_at        INTEGER,
    consumed_by_serial TEXT,
    device_id          TEXT,
    revoked_at         INTEGER,
    CHECK (consumed_at IS NULL OR revoked_at IS NULL),
    UNIQUE (protocol, secret_hash)
);
CREATE INDEX enrollment_grants_created ON enrollment_grants(created_at);
CREATE INDEX enrollment_grants_user ON enrollment_grants(username, created_at);

-- EST tokens keep their id, hash and use (the device comes from the certificate it paid for).
INSERT INTO enrollment_grants (id, secret_hash, protocol, username, platform, device_uuid,
    created_at, expires_at, consumed_at, consumed_by_serial, device_id, revoked_at)
SELECT t.id, t.token_hash, 'est', t.username, t.platform, t.device_uuid, t.created_at,
       t.expires_at, t.used_at, t.used_by_serial,
       (SELECT c.device_id FROM certificates c WHERE c.serial = t.used_by_serial), NULL
FROM est_tokens t;

-- SCEP challenges had no id: each gets a random UUID (version 4 form). Their certificate
-- was not recorded against the challenge, so consumed_by_serial stays NULL.
INSERT INTO enrollment_grants (id, secret_hash, protocol, username, platform, device_uuid,
    created_at, expires_at, consumed_at, consumed_by_serial, device_id, revoked_at)
SELECT lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
       substr(lower(hex(randomblob(2))), 2) || '-' ||
       substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) ||
       '-' || lower(hex(randomblob(6))),
       s.hash, 'scep', s.username, s.platform, s.device_uuid, s.created_at, s.expires_at,
       s.consumed_at, NULL, s.device_id, NULL
FROM scep_challenges s;

DROP INDEX scep_challenges_expiry;
DROP TABLE scep_challenges;
DROP TABLE est_tokens;
