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

/// Issue 17: `--code` narrows a silence to one finding code and `--by` names its author (by
/// default the login name); both are stored in silences.json and shown by `add` and `list`.
#[test]
fn add_with_code_and_author_and_list_them() {
    let (dir, cfg) = config_dir("");
    let cfg = cfg.to_str().unwrap();
    let add = |extra: &[&str], user: &str| {
        let mut argv = vec!["silence", "add", "-c", cfg, "--rule", "no-shorts", "--for", "2h", "--reason", "known"];
        argv.extend(extra);
        let out = crate::support::bin().args(&argv).env("USER", user).env_remove("LOGNAME").output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), show(&out))
    };
    let (code, stdout, all) = add(&["--code", "short_position", "--by", "alice"], "root");
    assert_eq!(code, Some(0), "{all}");
    assert!(stdout.contains("code `short_position`") && stdout.contains("by alice"), "{stdout}");
    let coded = stdout.split_whitespace().nth(1).unwrap().to_owned();
    let (code, stdout, all) = add(&["--subject", "CHWY"], "bob");
    assert_eq!(code, Some(0), "{all}");
    assert!(stdout.contains("by bob") && !stdout.contains("code"), "the login name by default: {stdout}");
    let plain = stdout.split_whitespace().nth(1).unwrap().to_owned();

    let out = tradewarden(&["silence", "list", "-c", cfg]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("CODE") && lines[0].contains("BY"), "{table}");
    let row = |id: &str| lines.iter().find(|l| l.starts_with(id)).unwrap().split_whitespace().collect::<Vec<_>>();
    assert_eq!(row(&coded)[..4], [coded.as_str(), "no-shorts", "*", "short_position"], "{table}");
    assert!(row(&coded).contains(&"alice"), "{table}");
    assert_eq!(row(&plain)[..4], [plain.as_str(), "no-shorts", "CHWY", "*"], "{table}");
    assert!(row(&plain).contains(&"bob"), "{table}");

    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state/silences.json")).unwrap()).unwrap();
    assert_eq!(file["silences"][0]["code"], "short_position");
    assert_eq!(file["silences"][0]["created_by"], "alice");
    assert!(file["silences"][1].get("code").is_none(), "no code: matches every code, as before");

    // A code is a snake_case word; the old refusals still hold with --code.
    let (code, _, all) = add(&["--code", "Short Position"], "bob");
    assert_eq!(code, Some(2), "{all}");
    assert!(all.contains("snake_case"), "{all}");
    let (code, _, all) = add(&["--by", " "], "bob");
    assert_eq!(code, Some(2), "{all}");
    assert!(all.contains("--by cannot be empty"), "{all}");
    let out = tradewarden(&[
        "silence",
        "add",
        "-c",
        cfg,
        "--rule",
        "source",
        "--code",
        "source_failed",
        "--for",
        "1h",
        "--reason",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --subject"), "{}", show(&out));
}
