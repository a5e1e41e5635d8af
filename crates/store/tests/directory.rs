//! Directory sources on the real SQLite store with a scripted directory: the chain's order,
//! lockout safety (binds stop before the threshold, a repeated wrong password never reaches
//! the directory, concurrent identical attempts cost one bind), the record of directory users
//! by immutable ID (rename keeps the username), group rules and the refresh that blocks
//! check-ins. The real directories (Samba AD, slapd) are in `crates/ferrocore/tests/directory_e2e.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use ferrocore_core::directory::{Directory, LocalDirectory};
use ferrocore_core::directory_sources::{
    ChainDirectory, DirectoryEntry, DirectorySource, DirectoryUserStore, LockoutPolicy, Member,
    STATE_ACTIVE, STATE_DELETED, STATE_DISABLED, STATE_NOT_MEMBER, SourceError, SourceSettings,
};
use ferrocore_core::{Clock, Core, CoreError, ManualClock};
use ferrocore_store::SqliteStore;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// A directory in memory: users with passwords, counting binds like AD's badPwdCount.
#[derive(Default)]
struct FakeDirectory {
    users: Mutex<HashMap<String, (DirectoryEntry, String)>>,
    binds: AtomicU32,
    bad: Mutex<HashMap<String, u32>>,
    down: std::sync::atomic::AtomicBool,
}

impl FakeDirectory {
    fn add(&self, id: &str, guid: &str, password: &str, groups: &[&str]) {
        self.users.lock().unwrap().insert(
            guid.to_owned(),
            (
                DirectoryEntry {
                    dn: format!("CN={id},DC=t"),
                    external_id: guid.into(),
                    user_id: id.into(),
                    upn: Some(format!("{id}@t.example")),
                    mail: Some(format!("{id}@mail.example")),
                    groups: groups.iter().map(|g| g.to_string()).collect(),
                    ..DirectoryEntry::default()
                },
                password.into(),
            ),
        );
    }
    fn edit(&self, guid: &str, f: impl FnOnce(&mut DirectoryEntry)) {
        f(&mut self.users.lock().unwrap().get_mut(guid).unwrap().0);
    }
    fn bad(&self, guid: &str) -> u32 {
        self.bad.lock().unwrap().get(guid).copied().unwrap_or(0)
    }
}

#[async_trait]
impl DirectorySource for FakeDirectory {
    fn name(&self) -> &str {
        "corp"
    }
    async fn find(&self, login: &str) -> Result<Option<DirectoryEntry>, SourceError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(SourceError::Unavailable("ldaps://dc1: refused".into()));
        }
        Ok(self
            .users
            .lock()
            .unwrap()
            .values()
            .find(|(e, _)| e.user_id.eq_ignore_ascii_case(login) || e.upn.as_deref() == Some(login))
            .map(|(e, _)| {
                let mut e = e.clone();
                e.bad_pwd_count = Some(self.bad(&e.external_id));
                e
            }))
    }
    async fn bind(&self, entry: &DirectoryEntry, password: &str) -> Result<(), SourceError> {
        self.binds.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let users = self.users.lock().unwrap();
        let (e, pw) = users.get(&entry.external_id).unwrap();
        if pw != password {
            *self
                .bad
                .lock()
                .unwrap()
                .entry(entry.external_id.clone())
                .or_default() += 1;
            return Err(SourceError::WrongPassword);
        }
        if e.disabled {
            return Err(SourceError::AccountDisabled);
        }
        self.bad.lock().unwrap().remove(&entry.external_id);
        Ok(())
    }
    async fn lookup(&self, external_id: &str) -> Result<Option<DirectoryEntry>, SourceError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(SourceError::Unavailable("ldaps://dc1: refused".into()));
        }
        Ok(self
            .users
            .lock()
            .unwrap()
            .get(external_id)
            .map(|(e, _)| e.clone()))
    }
    async fn lockout_policy(&self) -> Result<Option<LockoutPolicy>, SourceError> {
        Ok(Some(LockoutPolicy {
            threshold: 5,
            window_secs: 1800,
        }))
    }
}

struct World {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    store: Arc<SqliteStore>,
    fake: Arc<FakeDirectory>,
    chain: Arc<ChainDirectory>,
}

async fn world(settings: SourceSettings, local_first: bool) -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
    ));
    let store = Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
    let fake = Arc::new(FakeDirectory::default());
    fake.add("alice", "g-alice", "Alice-AD-1", &["mdm-users", "kiosk"]);
    fake.add("bob", "g-bob", "Bob-AD-1", &["staff"]);
    let source = Member::Source {
        source: fake.clone(),
        settings,
    };
    let members = if local_first {
        vec![Member::Local, source]
    } else {
        vec![source, Member::Local]
    };
    let chain = Arc::new(
        ChainDirectory::new(store.clone(), store.clone(), members, clock.clone(), 600).unwrap(),
    );
    chain.refresh_lockout_policies().await;
    World {
        _dir: dir,
        clock,
        store,
        fake,
        chain,
    }
}

fn code(r: Result<impl std::fmt::Debug, CoreError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn order_local_then_directory_and_no_fall_through() {
    let w = world(SourceSettings::default(), true).await;
    let core = Core::new(
        w.store.clone(),
        Arc::new(LocalDirectory::new(w.store.clone())),
        Arc::new(ferrocore_core::issuance::LocalIssuer::new(
            ferrocore_pki::LocalCa::generate("T", w.clock.now()).unwrap(),
        )),
        w.clock.clone(),
        Default::default(),
    );
    core.add_user("carol", "Carol-local-1", None).await.unwrap();
    let u = w
        .chain
        .authenticate("carol", "Carol-local-1")
        .await
        .unwrap();
    assert_eq!((u.username.as_str(), u.source.as_str()), ("carol", "local"));
    let u = w.chain.authenticate("alice", "Alice-AD-1").await.unwrap();
    assert_eq!((u.username.as_str(), u.source.as_str()), ("alice", "corp"));
    let u = w
        .chain
        .authenticate("alice@t.example", "Alice-AD-1")
        .await
        .unwrap();
    assert_eq!(u.username, "alice", "UPN login maps to the same user");
    assert_eq!(
        code(w.chain.authenticate("nobody", "x-pass").await),
        "invalid_credentials"
    );
    // An empty password is never sent (it would be an anonymous bind).
    let before = w.fake.binds.load(Ordering::SeqCst);
    assert_eq!(
        code(w.chain.authenticate("alice", "").await),
        "invalid_credentials"
    );
    assert_eq!(w.fake.binds.load(Ordering::SeqCst), before);
    // Directory down: the search fails with directory_unavailable, local users still work.
    w.fake.down.store(true, Ordering::SeqCst);
    assert_eq!(
        code(w.chain.authenticate("alice", "Alice-AD-1").await),
        "directory_unavailable"
    );
    w.chain
        .authenticate("carol", "Carol-local-1")
        .await
        .unwrap();
    // A local user can never take a directory user's name (and vice versa).
    w.fake.down.store(false, Ordering::SeqCst);
    w.fake.add("carol", "g-carol", "Carol-AD-1", &[]);
    assert_eq!(
        code(w.chain.authenticate("carol", "Carol-AD-1").await),
        "invalid_credentials"
    );
}

#[tokio::test]
async fn lockout_is_never_reached_and_the_right_password_still_works() {
    let w = world(SourceSettings::default(), false).await;
    // 50 concurrent attempts with one wrong password (a phone's saved old password): one
    // bind; the rest are answered from the failed-password cache.
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let c = w.chain.clone();
        tasks.push(tokio::spawn(async move {
            c.authenticate("alice", "Old-pass").await
        }));
    }
    for t in tasks {
        assert_eq!(code(t.await.unwrap()), "invalid_credentials");
    }
    assert_eq!(w.fake.binds.load(Ordering::SeqCst), 1);
    assert_eq!(w.fake.bad("g-alice"), 1);
    // Different wrong passwords: binds stop at threshold 5 - margin 2 = 3 failures.
    let mut codes = Vec::new();
    for i in 0..20 {
        codes.push(code(
            w.chain.authenticate("alice", &format!("guess-{i}")).await,
        ));
    }
    assert!(
        w.fake.bad("g-alice") < 5,
        "badPwdCount {}",
        w.fake.bad("g-alice")
    );
    assert_eq!(w.fake.bad("g-alice"), 3);
    assert_eq!(codes[..2], ["invalid_credentials", "invalid_credentials"]);
    assert!(
        codes[2..].iter().all(|c| *c == "too_many_attempts"),
        "{codes:?}"
    );
    let st = w.chain.guard().states(Some("alice")).unwrap();
    assert_eq!(st[0].failures, 3);
    // Clearing Ferrocore's state does not clear the directory's own count: still refused
    // without a bind (one more failure would bring AD to 4 of 5).
    w.chain.guard().clear("alice").unwrap();
    let before = w.fake.binds.load(Ordering::SeqCst);
    assert_eq!(
        code(w.chain.authenticate("alice", "Alice-AD-1").await),
        "too_many_attempts"
    );
    assert_eq!(w.fake.binds.load(Ordering::SeqCst), before);
    // Once the directory forgot them (its observation window), the right password works.
    w.fake.bad.lock().unwrap().clear();
    let u = w.chain.authenticate("alice", "Alice-AD-1").await.unwrap();
    assert_eq!(u.username, "alice");
    assert_eq!(w.fake.bad("g-alice"), 0);
    assert!(w.chain.guard().states(None).unwrap().is_empty());
}

#[tokio::test]
async fn the_directorys_bad_password_count_from_elsewhere_is_respected() {
    let w = world(SourceSettings::default(), false).await;
    w.fake.bad.lock().unwrap().insert("g-bob".into(), 3);
    let before = w.fake.binds.load(Ordering::SeqCst);
    assert_eq!(
        code(w.chain.authenticate("bob", "Bob-AD-1").await),
        "too_many_attempts"
    );
    assert_eq!(w.fake.binds.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn groups_policy_rename_and_refresh() {
    let settings = SourceSettings {
        enroll_groups: vec!["MDM-Users".into()],
        group_policies: vec![("kiosk".into(), "kiosk-policy".into())],
        ..SourceSettings::default()
    };
    let w = world(settings, false).await;
    assert_eq!(
        code(w.chain.authenticate("bob", "Bob-AD-1").await),
        "enrollment_not_allowed"
    );
    let u = w.chain.authenticate("alice", "Alice-AD-1").await.unwrap();
    assert_eq!(u.policy.as_deref(), Some("kiosk-policy"));
    let names = w.chain.cert_names("alice").await.unwrap().unwrap();
    assert_eq!(names.upn.as_deref(), Some("alice@t.example"));
    assert_eq!(names.email.as_deref(), Some("alice@mail.example"));
    assert_eq!(names.sid, None, "SID only when configured");
    // Renamed in the directory: same immutable ID, so the same Ferrocore user.
    w.fake.edit("g-alice", |e| {
        e.user_id = "alice.smith".into();
        e.upn = Some("alice.smith@t.example".into());
    });
    let u = w
        .chain
        .authenticate("alice.smith", "Alice-AD-1")
        .await
        .unwrap();
    assert_eq!(u.username, "alice");
    let rec = w
        .store
        .directory_user("corp", "g-alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (rec.login.as_str(), rec.state.as_str()),
        ("alice.smith", STATE_ACTIVE)
    );
    w.chain.check_user("alice").await.unwrap();
    // Refresh: removed from the group, then disabled, then deleted; an outage changes nothing.
    w.fake.edit("g-alice", |e| e.groups = vec!["kiosk".into()]);
    w.chain.refresh_users().await.unwrap();
    assert_eq!(
        code(w.chain.check_user("alice").await),
        "directory_user_blocked"
    );
    assert_eq!(
        w.store
            .directory_user_by_name("alice")
            .await
            .unwrap()
            .unwrap()
            .state,
        STATE_NOT_MEMBER
    );
    w.fake.edit("g-alice", |e| {
        e.groups = vec!["mdm-users".into()];
        e.disabled = true;
    });
    w.chain.refresh_users().await.unwrap();
    assert_eq!(
        w.store
            .directory_user_by_name("alice")
            .await
            .unwrap()
            .unwrap()
            .state,
        STATE_DISABLED
    );
    w.fake.edit("g-alice", |e| e.disabled = false);
    w.chain.refresh_users().await.unwrap();
    w.chain.check_user("alice").await.unwrap();
    w.fake.down.store(true, Ordering::SeqCst);
    let r = w.chain.refresh_users().await.unwrap();
    assert_eq!(r.unavailable, 1);
    w.chain.check_user("alice").await.unwrap();
    w.fake.down.store(false, Ordering::SeqCst);
    w.fake.users.lock().unwrap().remove("g-alice");
    w.chain.refresh_users().await.unwrap();
    assert_eq!(
        w.store
            .directory_user_by_name("alice")
            .await
            .unwrap()
            .unwrap()
            .state,
        STATE_DELETED
    );
    // Local users are never blocked by the directory.
    w.chain.check_user("someone-local").await.unwrap();
}
