//! `tradewarden rules test FILE`: declarative rule tests over recorded snapshots, in the
//! spirit of `promtool test rules`.
//!
//! ```toml
//! config = "../examples/stock-bot/tradewarden.toml"   # default for every case
//!
//! [[case]]
//! name = "phantom exit"
//! snapshot = "../examples/stock-bot/snapshots/phantom-exit"
//! findings = [ { rule = "no-shorts", code = "short_position", subject = "CHWY" } ]  # exactly these
//! absent = [ { rule = "positions-match", code = "orphaned_position" } ]              # none of these
//! outcomes = { "main-loop-alive" = "ok" }
//! ```
//! `findings`, when given, is the exact set of (rule, code, subject) the audit must produce;
//! `contains` lists findings that must be present among others; `absent` entries match any
//! finding with the same rule/code (and subject, when given). Paths are relative to the file.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::checks;
use crate::clock::SystemClock;
use crate::collect::broker::{Broker, replay::ReplayBroker};
use crate::config::reader::SourceText;
use crate::config::{Config, Overrides};
use crate::model::{Finding, Origin, Outcome, SourceErrorKind};

/// A rule-test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    config: Option<String>,
    #[serde(default, rename = "case")]
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    config: Option<String>,
    snapshot: String,
    findings: Option<Vec<Expect>>,
    #[serde(default)]
    contains: Vec<Expect>,
    #[serde(default)]
    absent: Vec<Expect>,
    #[serde(default)]
    outcomes: BTreeMap<String, Outcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    rule: String,
    code: String,
    subject: Option<String>,
}

impl Expect {
    fn matches(&self, f: &Finding) -> bool {
        self.rule == f.rule && self.code == f.code && self.subject.as_ref().is_none_or(|s| s == &f.subject)
    }

    fn show(&self) -> String {
        match &self.subject {
            Some(s) => format!("{} {} {s}", self.rule, self.code),
            None => format!("{} {} (any subject)", self.rule, self.code),
        }
    }
}

/// The outcome of a whole file.
#[derive(Debug, Default)]
pub struct TestRun {
    /// The printed report.
    pub output: String,
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
}

/// Runs a rule-test file.
///
/// # Errors
/// When the file cannot be read or parsed (a sentence with file:line:column).
pub async fn run(path: &Path) -> Result<TestRun, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let src = SourceText::new(path, text);
    let file: TestFile = toml::from_str(src.text()).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        src.problem(at, e.message().trim()).to_string()
    })?;
    let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_owned);
    let mut configs: BTreeMap<(PathBuf, PathBuf), Result<Config, String>> = BTreeMap::new();
    let mut run = TestRun::default();
    for case in &file.cases {
        let Some(cfg_name) = case.config.as_ref().or(file.config.as_ref()) else {
            return Err(format!("{}: case `{}` has no `config` and the file sets none", path.display(), case.name));
        };
        let cfg_path = dir.join(cfg_name);
        let snapshot = dir.join(&case.snapshot);
        // Each case replays its own snapshot: the configuration is read as `audit --replay`
        // reads it, so `kind = "replay"` without `dir` is not an error here either.
        let cfg = configs.entry((cfg_path.clone(), snapshot.clone())).or_insert_with(|| {
            Config::load_with(&cfg_path, &Overrides { replay_dir: Some(snapshot.clone()) }).map_err(|e| e.to_string())
        });
        if let Ok(cfg) = cfg {
            let wrong = unknown_expectations(cfg, case);
            if !wrong.is_empty() {
                // A typo in an expectation would otherwise pass for ever (`absent` of a code no
                // rule emits is always absent): the file is wrong, not the rules.
                return Err(format!("{}: case `{}`: {}", path.display(), case.name, wrong.join("; ")));
            }
        }
        let result = match cfg {
            Ok(cfg) => run_case(cfg, case, &snapshot).await,
            Err(e) => Err(vec![format!("configuration {} is invalid:\n{e}", cfg_path.display())]),
        };
        match result {
            Ok(()) => {
                run.passed += 1;
                let _ = writeln!(run.output, "ok   {}", case.name);
            }
            Err(problems) => {
                run.failed += 1;
                let _ = writeln!(run.output, "FAIL {}", case.name);
                for p in problems {
                    let _ = writeln!(run.output, "     {p}");
                }
            }
        }
    }
    let _ = writeln!(run.output, "\n{} passed, {} failed", run.passed, run.failed);
    Ok(run)
}

/// The expectations of a case that name a rule the configuration does not have, or a code its
/// rule can never emit.
fn unknown_expectations(cfg: &Config, case: &Case) -> Vec<String> {
    let codes_of = |rule: &str| -> Option<Vec<&'static str>> {
        if rule == Origin::Source.id() {
            return Some(vec![SourceErrorKind::Unavailable.code(), SourceErrorKind::Malformed.code()]);
        }
        let r = cfg.rules.iter().find(|r| r.id == rule)?;
        let mut codes = checks::kind(r.check.kind()).map(|k| k.codes.to_vec()).unwrap_or_default();
        codes.push(checks::RULE_UNKNOWN);
        Some(codes)
    };
    let ids = || cfg.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ");
    let mut wrong = Vec::new();
    let expects = case.findings.iter().flatten().chain(&case.contains).chain(&case.absent);
    for e in expects {
        match codes_of(&e.rule) {
            None => wrong.push(format!("no rule `{}` (rules: {}, or `source`)", e.rule, ids())),
            Some(codes) if !codes.contains(&e.code.as_str()) => {
                wrong.push(format!("rule `{}` never emits code `{}` (its codes: {})", e.rule, e.code, codes.join(", ")))
            }
            Some(_) => {}
        }
    }
    for rule in case.outcomes.keys() {
        if !cfg.rules.iter().any(|r| &r.id == rule) {
            wrong.push(format!("outcome of no rule `{rule}` (rules: {})", ids()));
        }
    }
    wrong
}

async fn run_case(cfg: &Config, case: &Case, snapshot: &Path) -> Result<(), Vec<String>> {
    let broker = Broker::Replay(ReplayBroker::new(snapshot));
    let snap = crate::collect::collect(cfg, &broker, &SystemClock).await.map_err(|e| vec![e.to_string()])?;
    let evaluated = crate::engine::evaluate(&cfg.rules, &snap, snap.taken_at);
    let mut problems = Vec::new();
    if let Some(expected) = &case.findings {
        for e in expected {
            if !evaluated.findings.iter().any(|f| e.matches(f)) {
                problems.push(format!("missing finding: {}", e.show()));
            }
        }
        for f in &evaluated.findings {
            if !expected.iter().any(|e| e.matches(f)) {
                problems.push(format!("unexpected finding: {} {} {} ({})", f.rule, f.code, f.subject, f.message));
            }
        }
    }
    for e in &case.contains {
        if !evaluated.findings.iter().any(|f| e.matches(f)) {
            problems.push(format!("missing finding: {}", e.show()));
        }
    }
    for e in &case.absent {
        for f in evaluated.findings.iter().filter(|f| e.matches(f)) {
            problems.push(format!("finding that must be absent: {} {} {} ({})", f.rule, f.code, f.subject, f.message));
        }
    }
    for (rule, want) in &case.outcomes {
        match evaluated.outcome(rule) {
            Some(got) if got == *want => {}
            Some(got) => problems.push(format!("rule {rule}: outcome {} (expected {})", got.as_str(), want.as_str())),
            None => problems.push(format!("rule {rule}: no such rule")),
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}
