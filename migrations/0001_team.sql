-- The team store: one row per incident, one log of events per incident.
CREATE TABLE incidents (
    id          text PRIMARY KEY,
    runbook     text NOT NULL,
    title       text NOT NULL,
    severity    text NOT NULL,
    mode        text NOT NULL,
    opened_by   text NOT NULL,
    opened_at   timestamptz NOT NULL,
    opened_host text NOT NULL,
    -- running, open, interrupted, resolved: kept by the events appended.
    status      text NOT NULL,
    -- Who runs it now (who opened it, or who resumed it last) and from which host.
    driver      text NOT NULL,
    driver_host text NOT NULL,
    last_step   text
);

CREATE TABLE events (
    incident  text NOT NULL,
    seq       bigint NOT NULL,
    -- Derived from the event as written locally: sharing it again is a no-op.
    event_id  text NOT NULL UNIQUE,
    ts        timestamptz NOT NULL,
    user_name text NOT NULL,
    host      text NOT NULL,
    kind      text NOT NULL,
    body      jsonb NOT NULL,
    PRIMARY KEY (incident, seq)
);
