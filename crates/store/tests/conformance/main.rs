//! The storage conformance suite: the lifecycle and grant scenarios (the domain on a real
//! store) and a test per storage-trait method, written against [`backend::Backend`], a
//! factory of fresh stores. Every backend runs the same suite: `suite!(name, BackendType)`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/apply.rs"]
mod apply;
mod backend;
mod grants;
#[path = "../support/grants.rs"]
mod grants_support;
mod lifecycle;
mod methods;

macro_rules! suite {
    ($name:ident, $backend:ty) => {
        mod $name {
            macro_rules! run {
                ($module:ident :: $test:ident) => {
                    #[tokio::test]
                    async fn $test() {
                        crate::$module::$test::<$backend>().await;
                    }
                };
            }
            run!(lifecycle::renewing_agents_through_window_expiry_and_grace);
            run!(lifecycle::past_the_grace_the_device_is_retired);
            run!(lifecycle::agents_without_renewal_register_again);
            run!(lifecycle::ten_renewals_keep_one_identity);
            run!(lifecycle::bad_renewal_input_is_refused);
            run!(lifecycle::migration_pending_then_success);
            run!(lifecycle::renewal_and_migration_sign_a_crl_only_when_they_revoke);
            run!(lifecycle::ocsp_answers_are_reused_for_sixty_seconds_and_valid_for_one_hour);
            run!(lifecycle::every_retirement_path_shows_in_ocsp_at_once);
            run!(lifecycle::search_and_renewal_at_risk);
            run!(lifecycle::ocsp_answers_without_nonce_are_reused_briefly_and_never_across_a_revocation);
            run!(grants::revoked_expired_reused_and_other_protocol_grants_are_refused);
            run!(grants::consumption_is_one_transaction_with_the_enrollment);
            crate::methods::tests!(run);
        }
    };
}

suite!(sqlite, crate::backend::Sqlite);
