//! What the storex macros accept (pass/: compiled and run) and what they refuse, with the exact
//! compiler message (fail/*.stderr). Regenerate the messages with `TRYBUILD=overwrite`, then read
//! every one: each must make sense to someone who has never seen the macros' source.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/pass/*.rs");
    cases.compile_fail("tests/fail/*.rs");
}
