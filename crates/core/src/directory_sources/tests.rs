use super::*;
use crate::clock::ManualClock;

fn entry(bad: Option<u32>) -> DirectoryEntry {
    DirectoryEntry {
        dn: "CN=alice,DC=example,DC=test".into(),
        external_id: "guid-1".into(),
        user_id: "alice".into(),
        bad_pwd_count: bad,
        ..DirectoryEntry::default()
    }
}

fn guard() -> (Arc<ManualClock>, LockoutGuard) {
    let clock = Arc::new(ManualClock::new(
        time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
    ));
    let g = LockoutGuard::new(clock.clone(), 600).unwrap();
    (clock, g)
}

const AD: LockoutPolicy = LockoutPolicy {
    threshold: 5,
    window_secs: 1800,
};

#[test]
fn failures_stop_before_the_directory_threshold_and_the_window_reopens() {
    let (clock, g) = guard();
    let s = SourceSettings::default();
    let e = entry(None);
    // Threshold 5, margin 2: three failed binds, then no more.
    for i in 0..3 {
        g.admit("a", AD, &s, &e).unwrap();
        g.record("a", g.mac("a", &format!("wrong{i}")), Outcome::Failure)
            .unwrap();
    }
    match g.admit("a", AD, &s, &e) {
        Err(CoreError::TooManyAttempts { retry_after_secs }) => {
            assert_eq!(retry_after_secs, 1800)
        }
        other => panic!("{other:?}"),
    }
    let st = g.states(Some("ALICE")).unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].failures, 3);
    assert_eq!(st[0].cached_failed_passwords, 3);
    clock.advance(time::Duration::seconds(1000));
    match g.admit("a", AD, &s, &e) {
        Err(CoreError::TooManyAttempts { retry_after_secs }) => {
            assert_eq!(retry_after_secs, 800)
        }
        other => panic!("{other:?}"),
    }
    // AD forgets failures older than its observation window; so does the guard.
    clock.advance(time::Duration::seconds(801));
    g.admit("a", AD, &s, &e).unwrap();
}

#[test]
fn the_directorys_own_count_is_respected() {
    let (_, g) = guard();
    let s = SourceSettings::default();
    // badPwdCount 2 (failures elsewhere): one more would reach the budget of 3.
    g.admit("a", AD, &s, &entry(Some(2))).unwrap();
    assert!(matches!(
        g.admit("a", AD, &s, &entry(Some(3))),
        Err(CoreError::TooManyAttempts { .. })
    ));
    // A directory without lockout (threshold 0) uses the configured maximum.
    let none = LockoutPolicy {
        threshold: 0,
        window_secs: 60,
    };
    g.admit("a", none, &s, &entry(Some(50))).unwrap();
    // Locked by the directory: said so, without a bind.
    let mut locked = entry(Some(5));
    locked.lockout_time = Some(1_800_000_000 - 60);
    assert!(matches!(
        g.admit("a", AD, &s, &locked),
        Err(CoreError::AccountLocked)
    ));
}

#[test]
fn failed_passwords_are_remembered_briefly_and_success_forgets_everything() {
    let (clock, g) = guard();
    g.record("a", g.mac("a", "old"), Outcome::Failure).unwrap();
    assert!(g.known_failure("a", "old").unwrap());
    assert!(!g.known_failure("a", "new").unwrap());
    // Another account with the same password is not affected.
    assert!(!g.known_failure("b", "old").unwrap());
    clock.advance(time::Duration::seconds(601));
    assert!(!g.known_failure("a", "old").unwrap());
    g.record("a", g.mac("a", "old"), Outcome::Failure).unwrap();
    g.record("a", g.mac("a", "right"), Outcome::Success)
        .unwrap();
    assert!(!g.known_failure("a", "old").unwrap());
    assert!(g.states(None).unwrap().is_empty());
}

#[test]
fn a_dropped_attempt_counts_as_a_failure_and_admin_clear_resets() {
    let (_, g) = guard();
    {
        let _a = Attempt {
            guard: &g,
            account: "a".into(),
            mac: g.mac("a", "x"),
            done: false,
        };
    }
    g.accounts().unwrap().get_mut("a").unwrap().user_id = "alice".into();
    assert_eq!(g.states(None).unwrap()[0].failures, 1);
    assert_eq!(g.clear("Alice").unwrap(), 1);
    assert!(g.states(None).unwrap().is_empty());
}

#[tokio::test]
async fn binds_of_one_account_are_serialised() {
    let (_, g) = guard();
    let g = Arc::new(g);
    let first = g.lock("a").await.unwrap();
    let g2 = g.clone();
    let waiter = tokio::spawn(async move {
        let _l = g2.lock("a").await.unwrap();
    });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    // Another account is not held up.
    drop(g.lock("b").await.unwrap());
    drop(first);
    waiter.await.unwrap();
    assert!(
        g.locks.lock().unwrap().is_empty(),
        "unused locks are dropped"
    );
}
