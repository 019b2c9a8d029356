//! `tradewarden completions SHELL` and `tradewarden man`, through the real binary.

use crate::support::{bin, run};

/// Every top-level command, as an operator types it.
const COMMANDS: [&str; 14] = [
    "audit",
    "run",
    "snapshot",
    "rules",
    "silence",
    "alerts",
    "flatten",
    "fix",
    "demo",
    "sim",
    "completions",
    "man",
    "check",
    "add",
];

#[test]
fn bash_completions_offer_every_command() {
    let (code, out, err) = run(bin().args(["completions", "bash"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("complete -F _tradewarden") && out.contains("tradewarden"), "{out}");
    for c in COMMANDS {
        assert!(out.contains(c), "`{c}` is not completed:\n{out}");
    }
    // Options too: `silence add --code` and the shared `--config`.
    assert!(out.contains("--config") && out.contains("--code") && out.contains("--by"), "{out}");
}

#[test]
fn zsh_and_fish_completions_are_scripts_for_tradewarden() {
    for (shell, marker) in [("zsh", "#compdef tradewarden"), ("fish", "complete -c tradewarden")] {
        let (code, out, err) = run(bin().args(["completions", shell]));
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(marker), "{shell}:\n{out}");
        assert!(out.contains("flatten") && out.contains("silence"), "{shell}:\n{out}");
    }
    let (code, _, err) = run(bin().args(["completions", "tcsh"]));
    assert_eq!(code, 2, "an unknown shell is a usage error");
    assert!(err.contains("bash") && err.contains("zsh") && err.contains("fish"), "{err}");
}

/// One page, roff, with a subsection per command (no pointer to pages that are not installed).
#[test]
fn man_prints_one_roff_page_listing_every_command() {
    let (code, out, err) = run(bin().arg("man"));
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l.starts_with(".TH tradewarden 1")), "{out}");
    assert!(out.contains(".SH NAME") && out.contains(".SH COMMANDS"), "{out}");
    for c in ["audit", "run", "snapshot", "rules check", "rules test", "silence add", "flatten", "fix", "man"] {
        assert!(out.contains(&format!(".SS \"tradewarden {c}\"")), "no subsection for `{c}`:\n{out}");
    }
    assert!(!out.contains("tradewarden\\-audit(1)"), "no reference to a page that does not exist");
    assert_eq!(out.matches(".ds Aq").count(), 2, "the preamble once");
    assert!(out.contains("TRADEWARDEN_CONFIG"), "the environment variable is documented");
}
