-- Certificate lifecycle: renewal chains, migration status, search indexes.

-- Why each certificate was issued, and which one it replaces (the device's chain).
ALTER TABLE certificates ADD COLUMN issue_reason TEXT NOT NULL DEFAULT 'registration';
ALTER TABLE certificates ADD COLUMN replaces_serial TEXT;

-- After a renewal the previous certificate stays valid until the device checks in with the new
-- one; then it is revoked as superseded.
ALTER TABLE devices ADD COLUMN previous_cert_serial TEXT;
-- none | pending | success | not_supported
ALTER TABLE devices ADD COLUMN migration_status TEXT NOT NULL DEFAULT 'none';
ALTER TABLE devices ADD COLUMN renewal_count INTEGER NOT NULL DEFAULT 0;

CREATE INDEX devices_platform ON devices(platform, status);
CREATE INDEX devices_migration ON devices(migration_status, status);
CREATE INDEX devices_cert_not_after ON devices(status, cert_not_after);
CREATE INDEX devices_last_checkin ON devices(last_checkin_at);
CREATE INDEX devices_registered ON devices(registered_at, id);
