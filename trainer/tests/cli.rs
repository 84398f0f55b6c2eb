//! The binary's own surface: help and version. (Behaviour is tested end to end in
//! the workspace's `tests/` crate, which runs this same binary.)

use std::process::Command;

#[test]
fn help_lists_the_subcommands() {
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("predict"), "{help}");
}

#[test]
fn no_subcommand_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}
