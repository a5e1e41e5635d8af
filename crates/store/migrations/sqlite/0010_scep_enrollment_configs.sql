-- External SCEP CAs as enrollment configurations (kind 'scep'): where the CA is reached and
-- what was checked at creation. The challenge and Ferrocore's RA key are files in the data
-- directory (mode 0600), never columns.
ALTER TABLE enrollment_configs ADD COLUMN scep_url TEXT;
ALTER TABLE enrollment_configs ADD COLUMN scep_ca_sha256 TEXT;
ALTER TABLE enrollment_configs ADD COLUMN scep_recipient_pem TEXT;
ALTER TABLE enrollment_configs ADD COLUMN scep_caps TEXT;
