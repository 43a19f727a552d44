//! The command line itself: usage, and a `--dir` that does not exist yet.
//! Each run is bounded by its arguments (a handful of iterations, every
//! optional section off).

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .output()
        .expect("running bench")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_prints_the_usage_and_every_flag() {
    let out = bench(&["--help"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    assert!(help.contains("Usage: bench"), "{help}");
    for flag in [
        "--iters",
        "--dir",
        "--trace",
        "--durability",
        "--sweep-sessions",
        "--many-files",
        "--threads",
        "--live-instances",
        "--keep-resident",
        "--profile-cycles",
        "--component",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn an_unknown_flag_is_a_usage_error_without_a_backtrace() {
    let out = bench(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "clap's usage exit code");
    let err = text(&out.stderr);
    assert!(err.contains("--no-such-flag"), "{err}");
    assert!(!err.contains("backtrace"), "{err}");
}

/// The smallest run: a few cycles, no optional section.
const QUICK: &[&str] = &[
    "--iters",
    "4",
    "--sweep-sessions",
    "0",
    "--many-files",
    "",
    "--threads",
    "",
    "--live-instances",
    "0",
];

#[test]
fn a_missing_dir_is_created_and_measured_in() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("not").join("yet");
    let mut args = vec!["--dir", dir.to_str().unwrap()];
    args.extend_from_slice(QUICK);
    let out = bench(&args);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(dir.is_dir());
    assert!(text(&out.stderr).contains("created"), "it says so");
    assert!(text(&out.stdout).contains("ratio wasm/native"));
}

#[test]
fn a_dir_that_is_a_file_is_refused_with_a_message() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let mut args = vec!["--dir", file.to_str().unwrap()];
    args.extend_from_slice(QUICK);
    let out = bench(&args);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("not a directory"), "{err}");
    assert!(!err.contains("stack backtrace"), "{err}");
}
