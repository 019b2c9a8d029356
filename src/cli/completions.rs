//! `tradewarden completions SHELL` and `tradewarden man`: the shell completion script and the
//! man page, generated from the same clap definitions as the parser, so they never drift.

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, exit, print};

/// The binary's name as installed (the completion script registers itself for it).
const BIN: &str = "tradewarden";

/// Prints the completion script for `shell`; exit 0.
///
/// # Errors
/// Writing to stdout failed.
pub fn completions(shell: Shell) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut out);
    print(&String::from_utf8_lossy(&out))?;
    Ok(exit::CLEAN)
}

/// Prints the man page (roff, section 1); exit 0.
///
/// # Errors
/// Rendering or writing to stdout failed.
pub fn man() -> anyhow::Result<u8> {
    print(&man_page()?)?;
    Ok(exit::CLEAN)
}

/// One self-contained page: clap_mangen's own layout points each subcommand to a page of its
/// own (`tradewarden-audit(1)`), which a single `man > tradewarden.1` would not install, so the
/// subcommands are rendered here as subsections of a COMMANDS section instead.
fn man_page() -> std::io::Result<String> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Sets every subcommand's bin name (`tradewarden rules check`), which the synopses use.
    cmd.build();
    let top = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    top.render_title(&mut out)?;
    top.render_name_section(&mut out)?;
    top.render_synopsis_section(&mut out)?;
    top.render_description_section(&mut out)?;
    top.render_options_section(&mut out)?;
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands() {
        command_subsection(sub, &mut out)?;
    }
    top.render_version_section(&mut out)?;
    // Each rendered part repeats the page preamble (the two lines defining the `Aq` string):
    // once, at the top, is enough.
    let mut page = String::new();
    let mut seen = 0;
    for line in String::from_utf8_lossy(&out).lines() {
        if line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq") {
            seen += 1;
            if seen > 2 {
                continue;
            }
        }
        page.push_str(line);
        page.push('\n');
    }
    Ok(page)
}

/// `.SS tradewarden NAME`: its synopsis, description and options, then its own subcommands.
fn command_subsection(cmd: &clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    if cmd.is_hide_set() {
        return Ok(());
    }
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    out.extend_from_slice(format!(".SS \"{name}\"\n").as_bytes());
    let man = clap_mangen::Man::new(cmd.clone());
    let mut section = Vec::new();
    man.render_synopsis_section(&mut section)?;
    man.render_description_section(&mut section)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut section)?;
    }
    // Section headings would end the subsection: each part becomes a paragraph of it.
    for line in String::from_utf8_lossy(&section).lines() {
        out.extend_from_slice(if line.starts_with(".SH ") { ".PP" } else { line }.as_bytes());
        out.push(b'\n');
    }
    for sub in cmd.get_subcommands() {
        command_subsection(sub, out)?;
    }
    Ok(())
}
