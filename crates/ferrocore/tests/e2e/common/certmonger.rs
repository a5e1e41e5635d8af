//! certmonger run without D-Bus for black-box tests (PEERS.md): its state, socket and log in
//! a test directory, in a private mount namespace whose system CA bundle also trusts the
//! test server's CA. Shared by the SCEP test modules.
#![allow(dead_code)]

use super::{clean_command, run};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Certmonger {
    child: Child,
    pub dir: std::path::PathBuf,
}

impl Certmonger {
    /// certmonger without D-Bus (PEERS.md), its state in `dir`. Its SCEP helper ignores
    /// `-R` when submitting (only GetCACaps/GetCACert use it), so the daemon runs in a
    /// private mount namespace whose system CA bundle also holds our CA.
    pub fn start(dir: &Path, ca: &Path) -> Certmonger {
        for d in ["s/requests", "s/cas", "s/local", "s/tmp"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let mut bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        bundle.extend(std::fs::read(ca).unwrap());
        std::fs::write(dir.join("bundle.pem"), bundle).unwrap();
        let script = format!(
            "mount --bind {b} /etc/ssl/certs/ca-certificates.crt && exec certmonger -n -L -P {s} -d 2 -p {p}",
            b = dir.join("bundle.pem").display(),
            s = dir.join("cm.sock").display(),
            p = dir.join("cm.pid").display(),
        );
        let log = std::fs::File::create(dir.join("certmonger.log")).unwrap();
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "sh", "-c", &script])
            .envs(Self::env_of(dir))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("spawn certmonger");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dir.join("cm.sock").exists() {
            if Instant::now() > deadline {
                super::terminate(&mut child);
                panic!(
                    "certmonger did not start: {}",
                    std::fs::read_to_string(dir.join("certmonger.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Certmonger {
            child,
            dir: dir.to_owned(),
        }
    }

    /// The daemon's own log (debug level 2).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("certmonger.log")).unwrap_or_default()
    }

    fn env_of(dir: &Path) -> Vec<(String, String)> {
        let s = dir.join("s");
        vec![
            ("CERTMONGER_CONFIG_DIR".into(), s.display().to_string()),
            (
                "CERTMONGER_REQUESTS_DIR".into(),
                s.join("requests").display().to_string(),
            ),
            (
                "CERTMONGER_CAS_DIR".into(),
                s.join("cas").display().to_string(),
            ),
            (
                "CERTMONGER_LOCAL_CA_DIR".into(),
                s.join("local").display().to_string(),
            ),
            (
                "CERTMONGER_TMPDIR".into(),
                s.join("tmp").display().to_string(),
            ),
            // Its own lock file: other certmonger instances on the machine do not block it.
            (
                "CERTMONGER_SYSTEM_LOCK_FILE".into(),
                dir.join("lock").display().to_string(),
            ),
            (
                "CERTMONGER_PVT_ADDRESS".into(),
                format!("unix:path={}", dir.join("cm.sock").display()),
            ),
        ]
    }

    pub fn getcert(&self, args: &[&str]) -> super::Out {
        let mut cmd = clean_command("getcert");
        cmd.envs(Self::env_of(&self.dir)).args(args);
        run(cmd, None)
    }

    /// `getcert add-scep-ca -c NICK -u URL [-R CA]`, which must succeed.
    pub fn add_scep_ca(&self, nick: &str, url: &str, ca: Option<&Path>) {
        let mut args = vec!["add-scep-ca", "-c", nick, "-u", url];
        let ca = ca.map(|p| p.to_string_lossy().into_owned());
        if let Some(ca) = &ca {
            args.extend(["-R", ca.as_str()]);
        }
        let out = self.getcert(&args);
        assert_eq!(out.code, 0, "{out:?}");
    }

    /// `getcert request` of a new RSA key `DIR/ID.key` and certificate `DIR/ID.crt` (subject
    /// `CN=ID`) from the CA `nick` with a challenge password; the request must be accepted
    /// by certmonger (what the CA answers shows in [`Self::wait_status`]).
    pub fn request(&self, nick: &str, id: &str, challenge: &str) -> (PathBuf, PathBuf) {
        let key = self.dir.join(format!("{id}.key"));
        let crt = self.dir.join(format!("{id}.crt"));
        let cn = format!("CN={id}");
        let out = self.getcert(&[
            "request",
            "-c",
            nick,
            "-k",
            &key.to_string_lossy(),
            "-f",
            &crt.to_string_lossy(),
            "-N",
            &cn,
            "-L",
            challenge,
            "-I",
            id,
        ]);
        assert_eq!(out.code, 0, "{out:?}");
        (key, crt)
    }

    /// `getcert resubmit -i ID`, then waits (up to 40 s) until the certificate file `crt`
    /// changes.
    pub fn resubmit_and_wait(&self, id: &str, crt: &Path) {
        let before = std::fs::read(crt).ok();
        let out = self.getcert(&["resubmit", "-i", id]);
        assert_eq!(out.code, 0, "{out:?}");
        let deadline = Instant::now() + Duration::from_secs(40);
        while std::fs::read(crt).ok() == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// `getcert list -i ID` until the status is one of `want` (or 40 s pass).
    pub fn wait_status(&self, id: &str, want: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let out = self.getcert(&["list", "-i", id]);
            if want
                .iter()
                .any(|w| out.stdout.contains(&format!("status: {w}\n")))
                || Instant::now() > deadline
            {
                return out.stdout;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Certmonger {
    fn drop(&mut self) {
        super::terminate(&mut self.child);
    }
}
