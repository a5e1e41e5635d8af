//! Test helpers: the shared reference material (Apple's schemas with
//! `check_payload.py`, nanomdm/micromdm fixtures, Mdm-Signature vectors) and the
//! openssl / python peers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `FERROCORE_APPLE_REF`, else the first `shared/ref` beside an ancestor of this
/// crate (`/work/shared/ref` for `/work/main` and its worktrees).
pub fn ref_dir() -> PathBuf {
    if let Ok(p) = std::env::var("FERROCORE_APPLE_REF") {
        return PathBuf::from(p);
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared/ref"))
        .find(|p| p.join("apple-device-management/check_payload.py").is_file())
        .expect("reference material not found: set FERROCORE_APPLE_REF to the shared/ref folder")
}

pub fn ref_file(rel: &str) -> Vec<u8> {
    let p = ref_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every `.plist` in a reference folder.
pub fn ref_plists(rel_dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = ref_dir().join(rel_dir);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "plist"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no plists in {}", dir.display());
    out
}

/// Findings of `check_payload.py --json ARGS FILE`: (exit status, errors, warnings).
pub struct Findings {
    pub status: i32,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

pub fn check_payload(file: &Path, args: &[&str]) -> Findings {
    check_payloads(&[file.to_path_buf()], args)
}

/// One `check_payload.py` run over several files (findings of all of them,
/// each prefixed with its file name).
pub fn check_payloads(files: &[PathBuf], args: &[&str]) -> Findings {
    let script = ref_dir().join("apple-device-management/check_payload.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--json")
        .args(args)
        .args(files)
        .output()
        .expect("run python3 check_payload.py");
    let status = out.status.code().unwrap_or(-1);
    assert!(
        status == 0 || status == 1,
        "check_payload.py could not run ({status}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check_payload.py output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let mut f = Findings {
        status,
        errors: vec![],
        warnings: vec![],
        infos: vec![],
    };
    for (file, list) in v.as_object().unwrap() {
        for item in list.as_array().unwrap() {
            let text = format!("{file}: {item}");
            match item.get("level").and_then(|l| l.as_str()) {
                Some("error") => f.errors.push(text),
                Some("warning") => f.warnings.push(text),
                _ => f.infos.push(text),
            }
        }
    }
    f
}

/// `openssl ARGS` in `dir`: (success, stdout, stderr).
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn pem(label: &str, der: &[u8]) -> String {
    ::pem::encode(&::pem::Pem::new(label, der.to_vec()))
}
