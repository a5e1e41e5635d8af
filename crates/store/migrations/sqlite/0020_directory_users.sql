-- Directory (Active Directory / LDAP) users Ferrocore has seen authenticate, recorded at their
-- first enrollment by the source's immutable ID (objectGUID / entryUUID): a renamed account
-- keeps the username its devices are recorded under. Nothing about failed passwords is stored.
CREATE TABLE directory_users (
    source        TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    login         TEXT NOT NULL,
    dn            TEXT NOT NULL,
    upn           TEXT,
    mail          TEXT,
    display_name  TEXT,
    sid           TEXT,
    groups_json   TEXT NOT NULL DEFAULT '[]',
    policy        TEXT,
    state         TEXT NOT NULL CHECK (state IN ('active', 'disabled', 'deleted', 'not_member')),
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    checked_at    INTEGER NOT NULL,
    PRIMARY KEY (source, external_id)
);
