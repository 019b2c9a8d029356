//! Issue 8, hostile inputs through the real binary: a 100 MB single line in a log and a 100 MB
//! state file cost no more memory than a clean audit (peak RSS measured by the kernel), deep
//! nesting, NUL bytes and invalid UTF-8 are findings, and a config nested 100,000 levels deep
//! is an error, never a crash.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::support::{bin, repo, run};

/// A copy of the stock-bot `clean` snapshot and a config replaying it.
struct Replay {
    dir: tempfile::TempDir,
}

impl Replay {
    fn clean() -> Self {
        let dir = tempfile::tempdir().unwrap();
        crate::support::copy_dir(&repo("examples/stock-bot/snapshots/clean"), &dir.path().join("snap"));
        let config = std::fs::read_to_string(repo("examples/stock-bot/tradewarden.toml"))
            .unwrap()
            .replace("../../rules/default.toml", repo("rules/default.toml").to_str().unwrap());
        std::fs::write(dir.path().join("tradewarden.toml"), config).unwrap();
        Self { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("tradewarden.toml")
    }

    fn snap(&self) -> PathBuf {
        self.dir.path().join("snap")
    }

    fn bot(&self, rel: &str) -> PathBuf {
        self.snap().join("bot").join(rel)
    }

    fn audit_args(&self) -> Vec<String> {
        vec![
            "audit".into(),
            "-c".into(),
            self.config().display().to_string(),
            "--replay".into(),
            self.snap().display().to_string(),
            "--format".into(),
            "json".into(),
        ]
    }

    fn audit(&self) -> (i32, Value, String) {
        let (code, out, err) = run(bin().args(self.audit_args()));
        let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
        (code, report, err)
    }
}

/// Runs the binary under a Python parent whose only child it is, so the kernel's
/// `RUSAGE_CHILDREN` peak is exactly the binary's peak RSS (`unsafe` is forbidden here, so no
/// `wait4` from Rust). Returns (exit code, stdout, peak RSS in KiB).
fn peak_rss(args: &[String]) -> (i32, String, u64) {
    let script = "import resource, subprocess, sys\n\
                  r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n\
                  sys.stderr.write('%d %d\\n' % (r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
                  sys.stdout.buffer.write(r.stdout)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_tradewarden"))
        .args(args)
        .env_remove("TRADEWARDEN_CONFIG")
        .env_remove("APCA_API_KEY_ID")
        .env_remove("APCA_API_SECRET_KEY")
        .output()
        .expect("python3 runs");
    let err = String::from_utf8_lossy(&out.stderr);
    let mut it = err.split_whitespace().map(|w| w.parse::<i64>().unwrap());
    let (code, kib) = (it.next().unwrap(), it.next().unwrap());
    (i32::try_from(code).unwrap(), String::from_utf8_lossy(&out.stdout).into_owned(), u64::try_from(kib).unwrap())
}

fn source<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["sources"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()
}

#[test]
fn a_100_mb_line_and_a_100_mb_state_file_cost_no_memory() {
    let r = Replay::clean();
    let (clean_code, clean_out, clean_kib) = peak_rss(&r.audit_args());
    assert_eq!(clean_code, 0, "{clean_out}");

    // A 100 MB line at the end of the run log: the freshness scan must read through all of it,
    // backwards, to find the newest event before it.
    let run = r.bot("logs/run.jsonl");
    let mut f = std::fs::OpenOptions::new().append(true).open(&run).unwrap();
    f.write_all(b"{\"ts\": \"2026-11-20T15:29:30+00:00\", \"event\": \"CYCLE\", \"pad\": \"").unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..100 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\"}\n").unwrap();
    drop(f);
    assert!(std::fs::metadata(&run).unwrap().len() > 100 << 20);
    // A 100 MB state file: sparse, refused by its size before a byte is read.
    let state = r.bot("state/position_metadata.json");
    std::fs::OpenOptions::new().write(true).open(&state).unwrap().set_len(100 << 20).unwrap();

    let (code, out, kib) = peak_rss(&r.audit_args());
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let malformed_log = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["subject"] == "log:run" && f["code"] == "source_malformed")
        .unwrap_or_else(|| panic!("{report}"));
    assert!(malformed_log["message"].as_str().unwrap().contains("longer than the 1 MiB limit (skipped)"));
    assert!(source(&report, "metadata")["error"].as_str().unwrap().contains("over the 64 MiB limit"));
    // The main loop is still seen alive: the event before the huge line counts.
    let alive = report["rules"].as_array().unwrap().iter().find(|o| o["id"] == "main-loop-alive").unwrap();
    assert_eq!(alive["outcome"], "ok", "{report}");
    eprintln!("peak RSS: clean audit {clean_kib} KiB, with the 100 MB line and file {kib} KiB");
    assert!(kib < 64 * 1024, "peak RSS {kib} KiB, over 64 MiB");
    assert!(kib < clean_kib + 8 * 1024, "peak RSS {kib} KiB vs {clean_kib} KiB for the clean audit");
}

#[test]
fn nul_bytes_invalid_utf8_and_deep_nesting_in_bot_files_are_findings() {
    let r = Replay::clean();
    std::fs::write(r.bot("state/executor_state.json"), b"{\"opens\": {\"AAPL\": {\"qty\": \"1\xff\"}}}\0").unwrap();
    std::fs::write(r.bot("state/position_metadata.json"), "[".repeat(100_000)).unwrap();
    let mut log = std::fs::OpenOptions::new().append(true).open(r.bot("logs/exits.jsonl")).unwrap();
    log.write_all(b"{\"ts\": \"2026-11-20T15:29:00Z\", \"x\": \"\0\"}\n\xff\xfe\n").unwrap();
    log.write_all(format!("{}\n", "{\"a\":".repeat(100_000)).as_bytes()).unwrap();
    drop(log);
    let (code, report, err) = r.audit();
    assert_eq!(code, 1, "{err}");
    assert_eq!(source(&report, "positions")["status"], "malformed", "{report}");
    let meta = source(&report, "metadata");
    assert_eq!(meta["status"], "malformed");
    assert!(meta["error"].as_str().unwrap().contains("recursion limit exceeded"), "{meta}");
    let exits = report["findings"].as_array().unwrap().iter().find(|f| f["subject"] == "log:exits").unwrap();
    assert!(exits["message"].as_str().unwrap().starts_with("3 malformed line(s)"), "{exits}");
    // Rules that need the positions are unknown, never "ok" and never "no positions".
    let outcome = |id: &str| {
        report["rules"].as_array().unwrap().iter().find(|o| o["id"] == id).unwrap()["outcome"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(outcome("positions-match"), "unknown");
}

#[test]
fn a_config_nested_deeply_or_holding_nul_bytes_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tradewarden.toml");
    for text in [
        format!("a = {}", "[".repeat(100_000)),
        format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!("a = {}", "{ b = ".repeat(50_000)),
        "[bot]\nroot = \"\0\"\n".to_owned(),
    ] {
        std::fs::write(&cfg, &text).unwrap();
        let (code, out, err) = run(bin().arg("rules").arg("check").arg("-c").arg(&cfg));
        assert_eq!(code, 2, "{}…: {out}{err}", &text[..10]);
        assert!(err.contains("tradewarden.toml"), "{err}");
    }
    // Not UTF-8 at all.
    std::fs::write(&cfg, b"\xff\xfe[\x00b\x00o\x00t\x00]\x00").unwrap();
    let (code, _, err) = run(bin().arg("rules").arg("check").arg("-c").arg(&cfg));
    assert_eq!(code, 2, "{err}");
    // A rules file that is not a regular file (a FIFO, /dev/zero) is a problem, never a hang
    // or an unbounded read.
    for rules in ["/dev/zero", "/dev/stdin"] {
        std::fs::write(&cfg, format!("rules = [\"{rules}\"]\n[bot]\n[bot.positions]\nfile = \"p.json\"\n")).unwrap();
        let (code, _, err) = run(bin().arg("rules").arg("check").arg("-c").arg(&cfg));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("not a regular file"), "{err}");
    }
}
