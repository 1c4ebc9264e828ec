//! How much of each local timeline the store has: a byte offset per incident, in
//! `<state>/shared/<incident>`, beside the store it was shared with. Written (atomically) only
//! after the store confirmed, so a crash leaves an offset at most behind: what follows it is
//! sent again, and the store keeps each event once.

use crate::timeline;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

fn path(local: &timeline::Store, incident: &str) -> PathBuf {
    local.base.join("shared").join(incident)
}

/// The offset shared with `store` (0 when nothing was, or it was another store).
pub fn read(local: &timeline::Store, store: &str, incident: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(path(local, incident)) else {
        return 0;
    };
    let mut lines = text.lines();
    match (
        lines.next(),
        lines.next().and_then(|n| n.trim().parse().ok()),
    ) {
        (Some(s), Some(offset)) if s == store => offset,
        _ => 0,
    }
}

/// Records that the store has the timeline up to `offset`.
pub fn write(
    local: &timeline::Store,
    store: &str,
    incident: &str,
    offset: u64,
) -> std::io::Result<()> {
    let file = path(local, incident);
    let dir = file.parent().expect("under the state folder");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let temp = dir.join(format!(".{incident}.{}", std::process::id()));
    {
        use std::io::Write;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        out.write_all(format!("{store}\n{offset}\n").as_bytes())?;
        out.sync_data()?;
    }
    std::fs::rename(&temp, &file)
}

/// How many complete events of the local timeline wait to be shared with `store`.
pub fn waiting(local: &timeline::Store, store: &str, incident: &str) -> usize {
    let offset = read(local, store, incident);
    timeline::tail(&local.path(incident), offset)
        .map(|tail| tail.lines.iter().filter(|(_, e)| e.is_some()).count())
        .unwrap_or(0)
}
