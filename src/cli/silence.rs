//! `tradewarden silence add|list|rm`: the command-line edge of silences (anyhow is fine here).

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use super::{ConfigArg, exit, load, print};
use crate::alert::{NewSilence, Silence, SilenceBook};
use crate::model::Origin;

/// `silence` subcommands.
#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Mute an alert's email and actions (not its report line) for a while.
    Add {
        #[command(flatten)]
        config: ConfigArg,
        /// The rule id (`source` for source findings, with --subject naming one source; the
        /// account, positions and orders reads cannot be silenced).
        #[arg(long)]
        rule: String,
        /// Only this subject (a symbol, log name, order id, `account`); default: every subject.
        #[arg(long)]
        subject: Option<String>,
        /// Only this finding code (`short_position`, `orphaned`...; `audit --format json` shows
        /// them); default: every code. An alert is muted only while all its findings have it.
        #[arg(long, value_parser = parse_code)]
        code: Option<String>,
        /// How long, like `30m` or `2h` (at most 30 days).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Duration,
        /// Why (shown in `silence list` and reports).
        #[arg(long)]
        reason: String,
        /// Who adds it (shown in `silence list`); default: the login name (`USER`, `LOGNAME`).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// List the silences in force.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Remove a silence by id.
    Rm {
        #[command(flatten)]
        config: ConfigArg,
        /// The id shown by `silence add` and `silence list`.
        id: String,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = crate::config::duration::parse(s)?;
    if d.is_zero() { Err("the duration must be more than zero".into()) } else { Ok(d) }
}

/// A finding code is a snake_case word (what the checks emit); anything else is a typo.
fn parse_code(s: &str) -> Result<String, String> {
    let s = s.trim();
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        Ok(s.to_owned())
    } else {
        Err("a finding code is a snake_case word, like `short_position` (see `audit --format json`)".into())
    }
}

/// Who adds a silence: `--by`, else the login name of the process, else unknown.
fn author(by: Option<&str>) -> Option<String> {
    let nonempty = |s: String| Some(clean(&s)).filter(|s| !s.is_empty());
    match by {
        Some(b) => nonempty(b.to_owned()),
        None => ["USER", "LOGNAME"].into_iter().find_map(|v| std::env::var(v).ok().and_then(nonempty)),
    }
}

/// Control characters out, so a value cannot break the table (or a terminal).
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}

/// Runs a `silence` subcommand; the exit code.
///
/// # Errors
/// Unexpected failures writing to stdout.
pub fn run(command: SilenceCommand, now: DateTime<Utc>) -> anyhow::Result<u8> {
    match command {
        SilenceCommand::Add { config, rule, subject, code, duration, reason, by } => {
            let cfg = match load(&config.config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let rule = clean(&rule);
            if Origin::of(&rule) != Some(Origin::Source) && !cfg.rules.iter().any(|r| r.id == rule) {
                let ids: Vec<&str> = cfg.rules.iter().map(|r| r.id.as_str()).collect();
                eprintln!(
                    "error: no rule `{rule}` in {}; rules: {}, or `source` for source findings",
                    cfg.path.display(),
                    ids.join(", ")
                );
                return Ok(exit::ERROR);
            }
            let reason = clean(&reason);
            if reason.is_empty() {
                eprintln!("error: --reason cannot be empty: say why, for whoever reads the list later");
                return Ok(exit::ERROR);
            }
            let created_by = author(by.as_deref());
            if by.is_some() && created_by.is_none() {
                eprintln!("error: --by cannot be empty: name who adds the silence");
                return Ok(exit::ERROR);
            }
            let new = NewSilence {
                rule,
                subject: subject.map(|s| clean(&s)).filter(|s| !s.is_empty()),
                code,
                duration,
                reason,
                created_by,
            };
            if let Some(why) = new.refusal() {
                eprintln!("error: {why}");
                return Ok(exit::ERROR);
            }
            match SilenceBook::update(&cfg.state_dir, now, |b| b.add(new, now)) {
                Ok((s, problem)) => {
                    warn_problem(problem.as_deref());
                    print(&format!(
                        "silence {} added: {} until {} ({})\n",
                        s.id,
                        matcher(&s),
                        s.ends_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        crate::config::duration::format(duration)
                    ))?;
                    Ok(exit::CLEAN)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(exit::ERROR)
                }
            }
        }
        SilenceCommand::List { config } => {
            let cfg = match load(&config.config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            // Listing prunes expired silences, through the same locked update.
            match SilenceBook::update(&cfg.state_dir, now, |b| b.active(now)) {
                Ok((active, problem)) => {
                    warn_problem(problem.as_deref());
                    print(&table(&active, now))?;
                    Ok(exit::CLEAN)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(exit::ERROR)
                }
            }
        }
        SilenceCommand::Rm { config, id } => {
            let cfg = match load(&config.config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            match SilenceBook::update(&cfg.state_dir, now, |b| b.remove(id.trim())) {
                Ok((Some(s), problem)) => {
                    warn_problem(problem.as_deref());
                    print(&format!("silence {} removed ({})\n", s.id, matcher(&s)))?;
                    Ok(exit::CLEAN)
                }
                Ok((None, problem)) => {
                    warn_problem(problem.as_deref());
                    eprintln!(
                        "error: no silence with id `{}` (expired ones are pruned); see `silence list`",
                        clean(&id)
                    );
                    Ok(exit::ERROR)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(exit::ERROR)
                }
            }
        }
    }
}

fn warn_problem(problem: Option<&str>) {
    if let Some(p) = problem {
        eprintln!("warning: {p}");
    }
}

fn matcher(s: &Silence) -> String {
    let mut m = match &s.subject {
        Some(sub) => format!("rule `{}`, subject `{sub}`", s.rule),
        None => format!("rule `{}`, every subject", s.rule),
    };
    if let Some(code) = &s.code {
        let _ = write!(m, ", code `{code}`");
    }
    if let Some(by) = &s.created_by {
        let _ = write!(m, ", by {by}");
    }
    m
}

/// The `silence list` table. The CODE column appears when a silence has a code.
#[must_use]
pub fn table(silences: &[Silence], now: DateTime<Utc>) -> String {
    if silences.is_empty() {
        return "no silences in force\n".into();
    }
    let codes = silences.iter().any(|s| s.code.is_some());
    let rows: Vec<Vec<String>> = silences
        .iter()
        .map(|s| {
            let left = (s.effective_end() - now).to_std().map(|d| Duration::from_secs(d.as_secs())).unwrap_or_default();
            let mut row = vec![s.id.clone(), s.rule.clone(), s.subject.clone().unwrap_or_else(|| "*".into())];
            if codes {
                row.push(s.code.clone().unwrap_or_else(|| "*".into()));
            }
            row.extend([
                s.effective_end().format("%Y-%m-%d %H:%M:%S").to_string(),
                crate::config::duration::format(left),
                s.created_by.clone().unwrap_or_else(|| "-".into()),
                s.reason.clone(),
            ]);
            row
        })
        .collect();
    let mut header = vec!["ID", "RULE", "SUBJECT"];
    if codes {
        header.push("CODE");
    }
    header.extend(["ENDS (UTC)", "LEFT", "BY", "REASON"]);
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for r in &rows {
        line(&r.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn table_lists_each_silence() {
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 14, 0, 0).unwrap();
        let mut b = SilenceBook::default();
        b.add(
            NewSilence {
                rule: "no-shorts".into(),
                subject: Some("CHWY".into()),
                code: None,
                duration: Duration::from_secs(7200),
                reason: "flattening by hand".into(),
                created_by: Some("ops".into()),
            },
            now,
        );
        let t = table(&b.silences, now + chrono::Duration::minutes(30));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID        RULE       SUBJECT  ENDS (UTC)"), "{t}");
        assert!(lines[1].contains("no-shorts  CHWY     2026-11-20 16:00:00  1h 30m  ops  flattening by hand"), "{t}");
        assert_eq!(table(&[], now), "no silences in force\n");

        // A silence with a code brings the CODE column (`*`: every code).
        b.add(
            NewSilence {
                rule: "positions-match".into(),
                subject: None,
                code: Some("orphaned".into()),
                duration: Duration::from_secs(3600),
                reason: "reconciling".into(),
                created_by: None,
            },
            now,
        );
        let t = table(&b.silences, now);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID        RULE             SUBJECT  CODE      ENDS (UTC)"), "{t}");
        assert!(lines[1].contains("no-shorts        CHWY     *         2026-11-20 16:00:00"), "{t}");
        assert!(
            lines[2].contains("positions-match  *        orphaned  2026-11-20 15:00:00  1h    -    reconciling"),
            "{t}"
        );
    }

    #[test]
    fn codes_are_snake_case_words_and_the_author_defaults_to_the_login_name() {
        assert_eq!(parse_code(" short_position ").unwrap(), "short_position");
        assert!(parse_code("Short-Position").is_err() && parse_code("").is_err());
        assert_eq!(author(Some(" alice\n")).as_deref(), Some("alice"));
        assert_eq!(author(Some(" ")), None);
    }
}
