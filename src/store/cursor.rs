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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn what_waits_is_the_complete_events_after_the_offset_shared() {
        let dir = std::env::temp_dir().join(format!("oncall-cursor-{}", std::process::id()));
        let local = timeline::Store::new(Some(dir.clone()));
        let (id, mut file) = local.create("x", &jiff::Zoned::now()).unwrap();
        let note = |text: &str| crate::engine::event::Event {
            ts: jiff::Timestamp::now(),
            incident: id.clone(),
            kind: crate::engine::event::EventKind::Resolved {
                text: text.into(),
                user: "u".into(),
            },
        };
        file.write(&note("one")).unwrap();
        file.write(&note("two")).unwrap();
        let store = "postgres://h:5432/db";
        assert_eq!(waiting(&local, store, &id), 2);
        let tail = timeline::tail(&local.path(&id), 0).unwrap();
        write(&local, store, &id, tail.end).unwrap();
        assert_eq!(waiting(&local, store, &id), 0);
        // Another store has none of it.
        assert_eq!(waiting(&local, "postgres://other:5432/db", &id), 2);
        // A line still being written waits; a line that is no event is never sent.
        let mut raw = std::fs::OpenOptions::new()
            .append(true)
            .open(local.path(&id))
            .unwrap();
        raw.write_all(b"not an event\n{\"ts\":").unwrap();
        assert_eq!(waiting(&local, store, &id), 0);
        let tail = timeline::tail(&local.path(&id), read(&local, store, &id)).unwrap();
        assert_eq!(tail.lines.len(), 1);
        assert!(tail.lines[0].1.is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
