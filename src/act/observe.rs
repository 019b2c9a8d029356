//! Observe mode: what each action would do, planned from the cycle's snapshot by the same
//! planner act mode uses after its re-read; nothing is sent, and nothing is read from the
//! broker (`fix_state` reads the bot's files, as act mode does, to show its diff).

use chrono::{DateTime, Utc};

use super::planner::{self, Blocked, Inputs};
use super::request::{Request, known, merged, unsilenced};
use super::{ActionReport, Status};
use crate::config::Config;
use crate::model::Snapshot;
use crate::model::action::Input;

/// Observe mode: the exact steps, planned from this cycle's snapshot; nothing is sent. The
/// triggers go through the same filters as in act mode (silence, a rule not evaluated this
/// cycle), and the plan comes from the same planner, refusals included.
pub(super) fn describe(config: &Config, req: &Request, snapshot: &Snapshot, at: DateTime<Utc>) -> ActionReport {
    let report = |triggers, status, detail: String| ActionReport::of(&req.kind, triggers, at, status, detail);
    // Silenced alerts are left out without being named: a silence keeps them out of email.
    let live = match unsilenced(&req.triggers) {
        Ok(t) => t,
        Err(why) => return report(&req.triggers, Status::Skipped, why),
    };
    let (triggers, gone) = known(live.clone());
    if triggers.is_empty() {
        return report(
            &live,
            Status::Described,
            format!("observe mode: no action would be taken: {}", gone.join("; ")),
        );
    }
    let (scope, ids) = merged(&triggers);
    let files = req
        .kind
        .needs()
        .contains(&Input::BotFiles)
        .then(|| super::fix_state::read_bot_files(&config.bot, &config.bot.root));
    let inputs = Inputs::from_snapshot(snapshot, scope, ids).with_bot_files(files.as_ref());
    let mut diff = None;
    let detail = match planner::plan_for(&req.kind, &inputs, config, at) {
        Ok(p) if p.plan.is_empty() => format!("observe mode: nothing to do ({})", p.plan.notes.join("; ")),
        Ok(p) => {
            diff = p.fix.as_ref().filter(|f| !f.is_empty()).map(super::fix_state::FixPlan::diff);
            format!("observe mode, nothing sent: would {}", p.plan.describe())
        }
        Err(Blocked::Unknown(input, why)) => {
            format!("observe mode: {} cannot be read this cycle ({why}), so no action would be taken", input.what())
        }
        Err(Blocked::Waiting(why) | Blocked::Refused(why)) => format!("observe mode: {why}"),
        Err(Blocked::NoExec(name)) => format!("observe mode: no [actions.exec.{name}] table"),
    };
    let mut r = report(&triggers, Status::Described, detail);
    r.diff = diff;
    r
}
