//! The two command lines as a user meets them, through the real binaries: every command and
//! option is described, an upload the server refuses before reading it keeps the server's
//! error code, a closed output pipe ends the command quietly, and times are printed in
//! RFC 3339 beside the Unix seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use clap::CommandFactory;
use common::*;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `path: what is missing` for every command without `about` and every option or argument
/// without `help`, below `cmd`.
fn undescribed(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
    let path = format!("{path} {}", cmd.get_name()).trim().to_owned();
    if cmd.get_about().is_none() {
        out.push(format!("{path}: command without a description"));
    }
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") {
            continue;
        }
        if arg.get_help().is_none() {
            out.push(format!("{path}: --{id} without a description"));
        }
    }
    for sub in cmd.get_subcommands() {
        undescribed(sub, &path, out);
    }
}

#[test]
fn every_command_and_option_has_a_description() {
    let mut missing = Vec::new();
    let mut commands = 0;
    for cmd in [
        ferrocore_server::cli::Cli::command(),
        ferrocore_agent::cli::Cli::command(),
    ] {
        cmd.clone().debug_assert();
        commands += count(&cmd);
        undescribed(&cmd, "", &mut missing);
    }
    assert!(commands > 50, "walked only {commands} commands");
    assert!(missing.is_empty(), "{}", missing.join("\n"));

    // And the binary prints them in `--help`.
    let mut help = clean_command(FERROCORE);
    help.args(["admin", "devices", "list", "--help"]);
    let out = run(help, None);
    assert_eq!(out.code, 0, "{out:?}");
    let after_option = out
        .stdout
        .split_once("--last-checkin-after")
        .map(|(_, rest)| rest.lines().take(2).collect::<String>())
        .unwrap_or_default();
    assert!(
        after_option.contains("checked in after this time"),
        "{}",
        out.stdout
    );
}

fn count(cmd: &clap::Command) -> usize {
    1 + cmd.get_subcommands().map(count).sum::<usize>()
}

/// `apps publish` of a package much larger than the server reads before it refuses (wrong
/// token, bad name, empty version): the server's code, not a broken pipe.
#[test]
fn refused_upload_keeps_the_server_error_code() {
    let s = Server::start();
    let package = s.path("big.apk");
    // 64 MiB: far beyond the socket buffers and what the server reads before answering.
    std::fs::File::create(&package)
        .and_then(|f| f.set_len(64 << 20))
        .expect("package file");
    let package = package.to_str().unwrap().to_owned();
    let publish = |extra: &[&str], name: &str, version: &str| {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend([
            "apps",
            "publish",
            "--platform",
            "android",
            "--name",
            name,
            "--version",
            version,
            "--file",
            &package,
        ]);
        s.admin(&args)
    };
    for (what, out, code) in [
        (
            "wrong token",
            publish(&["--token", "not-the-token"], "App", "1.0"),
            "unauthorized",
        ),
        ("bad name", publish(&[], " padded ", "1.0"), "bad_request"),
        ("empty version", publish(&[], "App", ""), "bad_request"),
    ] {
        assert_eq!(out.code, 2, "{what}: {out:?}");
        assert!(
            out.stderr.starts_with(&format!("error: {code}: ")),
            "{what}: {out:?}"
        );
        assert!(!out.stderr.contains("Broken pipe"), "{what}: {out:?}");
    }
    assert_eq!(s.admin_ok(&["apps", "list"]), Value::Array(Vec::new()));
}

/// Runs `cmd` with its standard output closed before it writes (`... | head -0`).
fn with_closed_stdout(mut cmd: std::process::Command) -> Out {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    drop(child.stdout.take());
    let mut stderr = child.stderr.take().expect("stderr");
    let status = wait_bounded(&mut child, Duration::from_secs(60)).expect("exits in time");
    let mut err = Vec::new();
    std::io::Read::read_to_end(&mut stderr, &mut err).expect("stderr");
    Out::from_parts(status, Vec::new(), err)
}

#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    let s = Server::start();
    s.add_user("alice");
    let state = s.path("dev");
    s.register_ok(&state, "alice", "android", "agent", "10.1.0");

    let mut admin = clean_command(FERROCORE);
    admin
        .args(["admin", "--url", &s.admin_url(), "--data-dir"])
        .arg(&s.data_dir)
        .args(["devices", "list"]);
    let out = with_closed_stdout(admin);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");

    for args in [&["status"][..], &["checkin"]] {
        let mut agent = clean_command(AGENT);
        agent.arg("--state").arg(&state).args(args);
        let out = with_closed_stdout(agent);
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (0, ""),
            "{args:?}: {out:?}"
        );
    }
    // The check-in above happened: the output was lost, not the work.
    let dev = &s.devices()["items"][0];
    assert!(dev["last_checkin_at"].is_i64(), "{dev}");
}

/// `name_rfc3339` of `v` is RFC 3339 and the same instant as the Unix seconds of `name`.
fn same_instant(v: &Value, name: &str) -> OffsetDateTime {
    let secs = v[name].as_i64().unwrap_or_else(|| panic!("{name} in {v}"));
    let text = v[format!("{name}_rfc3339")]
        .as_str()
        .unwrap_or_else(|| panic!("{name}_rfc3339 in {v}"));
    let t = OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(t.unix_timestamp(), secs, "{name}: {v}");
    t
}

#[test]
fn times_are_printed_in_rfc3339_and_accepted_as_filters() {
    let s = Server::start();
    s.add_user("alice");
    s.admin_ok(&["settings", "mutual-auth", "enable"]);
    let state = s.path("dev");
    s.register_ok(&state, "alice", "android", "agent", "10.1.0");
    let checkin = s.checkin_ok(&state);
    same_instant(&checkin, "server_time");
    same_instant(&checkin["certificate"], "not_after");

    let list = s.devices();
    let dev = &list["items"][0];
    let registered = same_instant(dev, "registered_at");
    let checked_in = same_instant(dev, "last_checkin_at");
    same_instant(dev, "cert_not_after");
    let detail = s.admin_ok(&["devices", "show", dev["device_id"].as_str().unwrap()]);
    same_instant(&detail["certificates"][0], "not_before");
    same_instant(&detail["recent_checkins"][0], "at");
    assert!(registered <= checked_in);

    // Filters take RFC 3339 (or Unix seconds).
    let before = (checked_in - time::Duration::seconds(1))
        .format(&Rfc3339)
        .unwrap();
    let after = (checked_in + time::Duration::seconds(1))
        .format(&Rfc3339)
        .unwrap();
    let total = |args: &[&str]| {
        let mut all = vec!["devices", "list"];
        all.extend_from_slice(args);
        s.admin_ok(&all)["total"].as_u64().unwrap()
    };
    assert_eq!(total(&["--last-checkin-after", &before]), 1);
    assert_eq!(total(&["--last-checkin-after", &after]), 0);
    let secs = (checked_in.unix_timestamp() + 1).to_string();
    assert_eq!(total(&["--last-checkin-before", &secs]), 1);
    let bad = s.admin(&["devices", "list", "--last-checkin-after", "yesterday"]);
    assert!(bad.code != 0 && bad.stderr.contains("RFC 3339"), "{bad:?}");
}
