-- Table 4's third column ("mutual authentication enabled before an upgrade") is not modelled:
-- nothing ever set this flag (see `ferrocore_core::rules::SettingState`).
ALTER TABLE mutual_auth DROP COLUMN carried_over;
