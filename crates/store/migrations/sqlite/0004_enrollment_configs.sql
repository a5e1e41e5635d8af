-- Enrollment configurations: the certificate sources for mutual authentication.

CREATE TABLE enrollment_configs (
    name        TEXT PRIMARY KEY,
    -- local_ca (a CA Ferrocore holds); external SCEP CAs come later
    kind        TEXT NOT NULL,
    ca_cert_pem TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- The configuration new mutual-auth identities come from.
ALTER TABLE mutual_auth ADD COLUMN enrollment_config TEXT NOT NULL DEFAULT 'local';

-- Which configuration issued the device's current identity, and whether a change of the
-- selection requires the device to register again.
ALTER TABLE devices ADD COLUMN enrollment_config TEXT;
ALTER TABLE devices ADD COLUMN reregister_required INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET enrollment_config = 'local' WHERE mode = 'mutual';

ALTER TABLE certificates ADD COLUMN enrollment_config TEXT NOT NULL DEFAULT 'local';
CREATE INDEX devices_enrollment ON devices(status, mode, enrollment_config);
