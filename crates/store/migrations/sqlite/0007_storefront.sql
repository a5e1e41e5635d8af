-- App storefront (Apps@Work) and AppConnect check-ins.

-- App Storefront Authentication: 'password' (default) or 'certificate'.
CREATE TABLE storefront_settings (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    auth       TEXT NOT NULL CHECK (auth IN ('password', 'certificate')),
    changed_at INTEGER
);
INSERT INTO storefront_settings (id, auth, changed_at) VALUES (1, 'password', NULL);

-- Published apps; the package file is DATA_DIR/apps/<id>.
CREATE TABLE apps (
    id           TEXT PRIMARY KEY,
    platform     TEXT NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    UNIQUE (platform, name, version)
);
CREATE INDEX apps_platform ON apps(platform, published_at);

-- Per-app AppConnect check-ins of a device.
CREATE TABLE appconnect_checkins (
    device_id        TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    app_id           TEXT NOT NULL,
    first_checkin_at INTEGER NOT NULL,
    last_checkin_at  INTEGER NOT NULL,
    count            INTEGER NOT NULL,
    PRIMARY KEY (device_id, app_id)
);
