-- One driver at a time. Holding an incident's lease is holding a session-level advisory lock
-- on it (hashtextextended(incident, 11)), which PostgreSQL releases when the driver's session
-- ends; this row says who holds or last held it, from where, since when, and the epoch every
-- action it applies carries. Whoever takes the lease raises the epoch.
CREATE TABLE leases (
    incident    text PRIMARY KEY,
    epoch       bigint NOT NULL,
    holder      text NOT NULL,
    host        text NOT NULL,
    since       timestamptz NOT NULL,
    -- The driver's session, whose advisory lock says the lease is held.
    backend_pid integer NOT NULL
);
