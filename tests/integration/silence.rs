//! `tradewarden silence add|list|rm` through the real binary.

use crate::util::{config_dir, show, tradewarden};

#[test]
fn add_list_rm_and_unknown_ids() {
    let (dir, cfg) = config_dir("");
    let cfg = cfg.to_str().unwrap();
    let out = tradewarden(&[
        "silence",
        "add",
        "-c",
        cfg,
        "--rule",
        "no-shorts",
        "--subject",
        "CHWY",
        "--for",
        "2h",
        "--reason",
        "flattening by hand",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let id = stdout.split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(id.len(), 8, "{stdout}");
    assert!(dir.path().join("state/silences.json").is_file());

    let out = tradewarden(&["silence", "list", "-c", cfg]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&id) && table.contains("no-shorts") && table.contains("CHWY"), "{table}");
    assert!(table.contains("flattening by hand"), "{table}");

    let out = tradewarden(&["silence", "add", "-c", cfg, "--rule", "nope", "--for", "1h", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no rule `nope`"), "{}", show(&out));

    // Review (issue 12): nothing may hide a blind watchdog, and no silence lasts for ever.
    for (args, says) in [
        (vec!["--rule", "source", "--for", "1h"], "needs --subject"),
        (vec!["--rule", "source", "--subject", "broker:positions", "--for", "1h"], "watchdog is blind"),
        (vec!["--rule", "no-shorts", "--for", "31d"], "at most 30days"),
    ] {
        let mut argv = vec!["silence", "add", "-c", cfg];
        argv.extend(&args);
        argv.extend(["--reason", "x"]);
        let out = tradewarden(&argv);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{args:?}: {}", show(&out));
    }
    let out = tradewarden(&[
        "silence",
        "add",
        "-c",
        cfg,
        "--rule",
        "source",
        "--subject",
        "log:run",
        "--for",
        "30d",
        "--reason",
        "rotating",
    ]);
    assert_eq!(out.status.code(), Some(0), "one named source, 30 days: {}", show(&out));

    let out = tradewarden(&["silence", "rm", "-c", cfg, &id]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let out = tradewarden(&["silence", "rm", "-c", cfg, &id]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let out = tradewarden(&["silence", "list", "-c", cfg]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!table.contains(&id) && table.contains("log:run"), "{table}");
}
