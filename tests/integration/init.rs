//! `tradewarden init` (issue 17): a starter configuration beside a bot that `rules check`
//! accepts and `audit` runs, the layout guessed and said, and never a file overwritten.

use std::process::Command;

use crate::simulator::{KEY_ID, SECRET, Sim, phantom_exit_scenario};
use crate::support::{bin, repo, run};

fn with_keys(mut cmd: Command) -> Command {
    cmd.env("APCA_API_KEY_ID", KEY_ID).env("APCA_API_SECRET_KEY", SECRET);
    cmd
}

#[test]
fn init_guesses_each_layout_writes_a_config_that_checks_and_audits_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    for (example, layout, also) in [
        ("stock-bot", "found state/executor_state.json", None),
        ("ordinis", "found logs/positions.jsonl", Some("rules.toml")),
    ] {
        let bot = dir.path().join(example);
        crate::support::copy_dir(&repo(&format!("examples/{example}/bot")), &bot);
        let (code, out, err) = run(bin().args(["init", "--dir"]).arg(&bot));
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains(&format!("layout: {layout}")), "{out}");
        assert!(!out.contains("MISSING"), "every file of the layout is there: {out}");
        let cfg = bot.join("tradewarden.toml");
        assert!(also.is_none_or(|f| bot.join(f).is_file()));
        let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
        assert_eq!(code, 0, "{example}: {out}{err}");
        assert!(!err.contains("warning"), "{err}");

        // It audits the bot against a broker: point it at the simulator.
        let sim = Sim::start(&phantom_exit_scenario());
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("kind = \"alpaca\"", &format!("kind = \"alpaca\"\nbase_url = {:?}", sim.url));
        std::fs::write(&cfg, text).unwrap();
        let (code, out, err) = run(with_keys(bin()).args(["audit", "-c"]).arg(&cfg));
        assert!(code == 0 || code == 1, "{example}: {out}{err}");
        assert!(out.contains("no-shorts"), "{out}");

        // Never overwrites.
        let before = std::fs::read_to_string(&cfg).unwrap();
        let (code, _, err) = run(bin().args(["init", "--dir"]).arg(&bot));
        assert_eq!(code, 2);
        assert!(err.contains("exists; nothing written"), "{err}");
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), before);
    }

    // A folder with neither layout: the stock-bot start, each file named as missing.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, out, _) = run(bin().args(["init", "--dir"]).arg(&empty));
    assert_eq!(code, 0);
    assert!(out.contains("found neither") && out.contains("MISSING state/executor_state.json"), "{out}");
    // A chosen layout is said to be chosen.
    let chosen = dir.path().join("chosen");
    std::fs::create_dir(&chosen).unwrap();
    let (code, out, _) = run(bin().args(["init", "--layout", "ordinis", "--dir"]).arg(&chosen));
    assert_eq!(code, 0);
    assert!(out.contains("layout: chosen with --layout") && chosen.join("rules.toml").is_file(), "{out}");
    let (code, _, err) = run(bin().args(["init", "--dir"]).arg(dir.path().join("nope")));
    assert_eq!(code, 2);
    assert!(err.contains("is not a folder"), "{err}");
}
