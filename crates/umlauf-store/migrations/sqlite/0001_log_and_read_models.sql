-- The append-only log and the read models built from it (SQLite).
--
-- Positions and versions are INTEGER (64-bit). A record's bytes are stored exactly as written
-- at append; `leaf_hash` is SHA-256(0x00 || record). The log tables refuse UPDATE and DELETE.

-- The single head row: the newest record's position and recording time. Every appending transaction takes
-- the write lock (BEGIN IMMEDIATE) before reading it, so positions are handed out without gaps.
CREATE TABLE log_head (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    position INTEGER NOT NULL CHECK (position >= 0),
    -- The newest record's recording time, RFC 3339 with nanoseconds; NULL while the log is empty.
    recorded_at TEXT
) STRICT;

INSERT INTO log_head (singleton, position, recorded_at) VALUES (1, 0, NULL);

CREATE TABLE log_records (
    position INTEGER PRIMARY KEY CHECK (position >= 1),
    stream TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    event_type TEXT NOT NULL,
    command_id TEXT,
    record BLOB NOT NULL,
    leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    UNIQUE (stream, version)
) STRICT;

-- One row per accepted command: its content digest (payload and signature) and the positions
-- of the records it caused.
CREATE TABLE log_commands (
    command_id TEXT PRIMARY KEY,
    digest BLOB NOT NULL CHECK (length(digest) = 32),
    first_position INTEGER NOT NULL CHECK (first_position >= 1),
    record_count INTEGER NOT NULL CHECK (record_count >= 1)
) STRICT;

CREATE TRIGGER log_records_refuse_update BEFORE UPDATE ON log_records
BEGIN
    SELECT RAISE(ABORT, 'the log is append-only: log_records cannot be updated');
END;

CREATE TRIGGER log_records_refuse_delete BEFORE DELETE ON log_records
BEGIN
    SELECT RAISE(ABORT, 'the log is append-only: log_records cannot be deleted');
END;

CREATE TRIGGER log_commands_refuse_update BEFORE UPDATE ON log_commands
BEGIN
    SELECT RAISE(ABORT, 'the log is append-only: log_commands cannot be updated');
END;

CREATE TRIGGER log_commands_refuse_delete BEFORE DELETE ON log_commands
BEGIN
    SELECT RAISE(ABORT, 'the log is append-only: log_commands cannot be deleted');
END;

-- Read models: pure folds of the log, written in the append's transaction, rebuildable.
CREATE TABLE circulation_status (
    circulation TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    -- Fixed-width RFC 3339 with nanoseconds, so text order is time order.
    deadline TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL
) STRICT;

CREATE INDEX circulation_status_body ON circulation_status (body, state, deadline);
CREATE INDEX circulation_status_open_deadline ON circulation_status (deadline) WHERE state = 'open';

CREATE TABLE inbox (
    body TEXT NOT NULL,
    member TEXT NOT NULL,
    circulation TEXT NOT NULL,
    PRIMARY KEY (body, member, circulation)
) STRICT;

CREATE INDEX inbox_circulation ON inbox (circulation);

CREATE TABLE key_status (
    body TEXT NOT NULL,
    key_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'revoked')),
    status TEXT NOT NULL,
    PRIMARY KEY (body, key_id)
) STRICT;

CREATE INDEX key_status_key ON key_status (key_id);
