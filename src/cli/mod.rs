//! The command line: clap definitions and dispatch, one file per command. The binary edge:
//! anyhow is used here and nowhere else, and no stage imports this module.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod act;
mod alerts;
mod completions;
mod demo;
mod init;
mod rules_list;
mod rules_test;
mod silence;
mod sim;
mod snapshot;
mod status;

use crate::clock::SystemClock;
use crate::collect::broker::Broker;
use crate::config::{Config, ConfigError, Overrides};
use crate::model::Severity;
use crate::report::Report;

/// Exit codes: 0 clean, 1 findings at or above `--fail-on`, 2 could not run.
pub mod exit {
    /// Clean.
    pub const CLEAN: u8 = 0;
    /// Findings at or above the threshold.
    pub const FINDINGS: u8 = 1;
    /// Could not run: bad configuration, bad arguments, unusable input.
    pub const ERROR: u8 = 2;
}

/// tradewarden: a sidecar watchdog for automated trading bots.
#[derive(Debug, Parser)]
#[command(name = "tradewarden", version, about, long_about = None)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    pub log_json: bool,
}

/// The configuration file option shared by commands.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// The configuration file.
    #[arg(short = 'c', long = "config", env = "TRADEWARDEN_CONFIG", default_value = "tradewarden.toml")]
    pub config: PathBuf,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// The stable JSON document.
    Json,
    /// Markdown, for tickets.
    Markdown,
}

/// Severity threshold for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Any finding.
    Info,
    /// Warnings and critical findings.
    Warning,
    /// Critical findings only.
    Critical,
}

impl From<FailOn> for Severity {
    fn from(f: FailOn) -> Self {
        match f {
            FailOn::Info => Self::Info,
            FailOn::Warning => Self::Warning,
            FailOn::Critical => Self::Critical,
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect once, evaluate the rules, print the report.
    Audit {
        #[command(flatten)]
        config: ConfigArg,
        /// Read the broker and bot from a snapshot directory instead.
        #[arg(long, value_name = "DIR")]
        replay: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Exit 1 when a finding is at or above this severity.
        #[arg(long, value_enum, default_value_t = FailOn::Warning)]
        fail_on: FailOn,
    },
    /// The watchdog: run audits on the schedule, with alert lifecycle, email, actions and the
    /// status server, until SIGTERM/SIGINT.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Stop after this many cycles (tests, scripts).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        max_cycles: Option<u64>,
    },
    /// Record everything one audit reads (broker bodies, bot files, log tails) into DIR, for
    /// `audit --replay DIR`.
    Snapshot {
        #[command(flatten)]
        config: ConfigArg,
        /// The snapshot directory to create (must not exist or be empty).
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
    },
    /// Validate, list or test rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Add, list or remove silences (mute an alert's email and actions, not its report line).
    Silence {
        #[command(subcommand)]
        command: silence::SilenceCommand,
    },
    /// Alerts: `alerts test` sends a test email, `alerts history` lists alert transitions.
    Alerts {
        #[command(subcommand)]
        command: alerts::AlertsCommand,
    },
    /// Close positions now, behind the safety gates: prints the plan, asks (unless --yes),
    /// then acts (exit 0 done, 1 failed or unconfirmed, 2 refused or nothing done).
    Flatten(act::FlattenArgs),
    /// Rewrite the bot's positions and metadata files to match the broker: shows the diff,
    /// asks (unless --yes), then writes with a backup (exit codes as for flatten).
    Fix(act::FixArgs),
    /// Write a commented starter tradewarden.toml beside a bot (never overwrites a file).
    Init(init::InitArgs),
    /// The embedded demo: the phantom-exit incident end to end on a local simulator.
    Demo {
        /// Where to write the demo's files.
        #[arg(long, value_name = "DIR", default_value = "tradewarden-demo")]
        dir: PathBuf,
    },
    /// What the watchdog sees at a glance, from the state directory: alerts, unknown rules, the
    /// last cycle, silences, the outbox, recent actions (exit codes as for audit).
    Status(status::StatusArgs),
    /// Run the Alpaca-compatible simulator; prints its URL as the first line on stdout.
    Sim {
        /// The scenario file (JSON) that seeds the state.
        #[arg(long, value_name = "FILE")]
        scenario: Option<PathBuf>,
        /// The address to listen on (loopback only); port 0 picks a free port.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell) to stdout, e.g.
    /// `tradewarden completions bash > /etc/bash_completion.d/tradewarden`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, e.g. `tradewarden man > /usr/local/share/man/man1/tradewarden.1`.
    Man,
}

/// `rules` subcommands.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate the configuration and its rules; list every problem with file:line:column.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List the rules with their kinds and parameters.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Run rule tests (cases of snapshot + expected findings) from a TOML file.
    Test {
        /// The test file.
        file: PathBuf,
    },
}

/// Parses arguments and runs; the process exit code.
#[must_use]
pub fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    // The daemon logs its cycles at info; one-shot commands keep stderr quiet.
    let default_filter = if matches!(cli.command, Command::Run { .. }) { "warn,tradewarden=info" } else { "warn" };
    crate::logging::init(cli.log_json, default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::from(exit::CLEAN);
            }
            eprintln!("error: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

pub(crate) fn load(path: &Path) -> Result<Config, u8> {
    load_with(path, &Overrides::default())
}

/// `load` with command-line settings (`--replay DIR`) applied before validation.
pub(crate) fn load_with(path: &Path, overrides: &Overrides) -> Result<Config, u8> {
    Config::load_with(path, overrides).map_err(|e: ConfigError| {
        eprintln!("{e}");
        eprintln!(
            "{} problem{} found; nothing was run",
            e.problems.len(),
            if e.problems.len() == 1 { "" } else { "s" }
        );
        exit::ERROR
    })
}

pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Runs a parsed command line; the exit code.
///
/// # Errors
/// Unexpected failures (I/O on stdout, ...), reported as exit 2.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Audit { config, replay, format, fail_on } => {
            let cfg = match load_with(&config.config, &Overrides { replay_dir: replay.clone() }) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let broker = match Broker::for_config(&cfg, replay.as_deref()) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(exit::ERROR);
                }
            };
            let snap = match crate::collect::collect(&cfg, &broker, &SystemClock).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(exit::ERROR);
                }
            };
            let evaluated = crate::engine::evaluate(&cfg.rules, &snap, snap.taken_at);
            let report = Report::build(&snap, &evaluated);
            let text = match format {
                Format::Text => crate::report::render_text(&report, std::io::stdout().is_terminal()),
                Format::Json => report.to_json() + "\n",
                Format::Markdown => crate::report::render_markdown(&report),
            };
            print(&text)?;
            let threshold: Severity = fail_on.into();
            Ok(if report.worst().is_some_and(|w| w >= threshold) { exit::FINDINGS } else { exit::CLEAN })
        }
        Command::Run { config, max_cycles } => match load(&config.config) {
            Ok(cfg) => match crate::daemon::run(cfg, max_cycles).await {
                Ok(()) => Ok(exit::CLEAN),
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(exit::ERROR)
                }
            },
            Err(code) => Ok(code),
        },
        Command::Init(args) => init::run(&args),
        Command::Demo { dir } => {
            demo::run(&dir).await?;
            Ok(exit::CLEAN)
        }
        Command::Sim { scenario, listen } => sim::run(scenario.as_deref(), &listen).await,
        Command::Rules { command } => match command {
            RulesCommand::Check { config } => {
                let cfg = match load(&config.config) {
                    Ok(c) => c,
                    Err(code) => return Ok(code),
                };
                print(&format!(
                    "{}: ok ({} rule{} from {} file{})\n",
                    cfg.path.display(),
                    cfg.rules.len(),
                    if cfg.rules.len() == 1 { "" } else { "s" },
                    cfg.rule_files.len(),
                    if cfg.rule_files.len() == 1 { "" } else { "s" }
                ))?;
                // Not an error: the bot may not be deployed yet. But every audit until it is
                // will find its files unavailable, so say it now.
                if !cfg.bot.root.is_dir() {
                    eprintln!(
                        "warning: {}: [bot] root `{}` is not a folder (yet): until it is, the bot's files are \
                         unavailable and the rules that read them are unknown",
                        cfg.path.display(),
                        cfg.bot.root.display()
                    );
                }
                Ok(exit::CLEAN)
            }
            RulesCommand::List { config } => {
                let cfg = match load(&config.config) {
                    Ok(c) => c,
                    Err(code) => return Ok(code),
                };
                print(&rules_list::render(&cfg.rule_files, &cfg.rules))?;
                Ok(exit::CLEAN)
            }
            RulesCommand::Test { file } => match rules_test::run(&file).await {
                Ok(run) => {
                    print(&run.output)?;
                    Ok(if run.failed == 0 { exit::CLEAN } else { exit::FINDINGS })
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(exit::ERROR)
                }
            },
        },
        Command::Snapshot { config, out } => snapshot::run(&config, &out).await,
        Command::Flatten(args) => act::flatten(args).await,
        Command::Fix(args) => act::fix(args).await,
        Command::Silence { command } => silence::run(command, crate::clock::Clock::now(&SystemClock)),
        Command::Status(args) => status::run(&args, crate::clock::Clock::now(&SystemClock)),
        Command::Alerts { command } => alerts::run(command, crate::clock::Clock::now(&SystemClock)).await,
        Command::Completions { shell } => completions::completions(shell),
        Command::Man => completions::man(),
    }
}
