//! Rule packs built into the binary, named `builtin:NAME` in `rules`: a configuration copied
//! next to any bot works without a rules file beside it, and with no `rules` key at all the
//! default pack is used.

/// The name of the default pack, used when the configuration has no `rules` key.
pub const DEFAULT: &str = "builtin:default";

/// The prefix of a built-in pack's name.
pub const PREFIX: &str = "builtin:";

/// Every built-in pack: its name and its text.
pub const PACKS: [(&str, &str); 1] = [(DEFAULT, include_str!("../../rules/default.toml"))];

/// The text of the built-in pack of that name (`builtin:default`).
#[must_use]
pub fn text(name: &str) -> Option<&'static str> {
    PACKS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Whether a `rules` entry names a built-in pack (rather than a file).
#[must_use]
pub fn is_builtin(name: &str) -> bool {
    name.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_pack_is_the_shipped_rules_file() {
        let on_disk = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/default.toml")).unwrap();
        assert_eq!(text(DEFAULT), Some(on_disk.as_str()));
        assert!(is_builtin("builtin:nope") && text("builtin:nope").is_none());
        assert!(!is_builtin("rules/default.toml"));
    }
}
