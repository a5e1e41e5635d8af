-- The requester of a SCEP transaction: SHA-256 (hex) of the signer certificate's
-- SubjectPublicKeyInfo. A GetCertInitial poll is answered only to the same key. Rows from
-- before this column have none and are answered to nobody (badCertId).
ALTER TABLE scep_transactions ADD COLUMN signer_spki_sha256 TEXT;
