-- Search and report indexes (measured with crates/store/examples/bench_search.rs, 1M devices;
-- docs/BENCHMARKS.md).
--
-- "Inside the renewal window" and the renewal-at-risk report compare each device's certificate
-- expiry with its policy's window. Scanned per policy (few rows) this index turns both counts
-- into index-only range scans: policy = ? AND cert_not_after BETWEEN t AND t + window; status
-- is carried so the report's status = 'active' needs no table row either.
CREATE INDEX devices_policy_expiry ON devices(policy, cert_not_after, status);
