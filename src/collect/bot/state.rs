//! The bot's JSON state: tracked positions and metadata, extracted through the mapping. STUB.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{MetadataMapping, PositionsMapping};
use crate::model::{LogSummary, Metadata, SourceError, Sourced, TrackedPosition};

/// Reads the positions the bot tracks.
pub fn read_positions(
    _mapping: &PositionsMapping,
    _root: &Path,
    _logs: &BTreeMap<String, Sourced<LogSummary>>,
) -> Sourced<Vec<TrackedPosition>> {
    Err(SourceError::unavailable("positions", "not implemented"))
}

/// Reads per-symbol metadata.
pub fn read_metadata(
    _mapping: &MetadataMapping,
    _root: &Path,
    _logs: &BTreeMap<String, Sourced<LogSummary>>,
) -> Sourced<Metadata> {
    Err(SourceError::unavailable("metadata", "not implemented"))
}
