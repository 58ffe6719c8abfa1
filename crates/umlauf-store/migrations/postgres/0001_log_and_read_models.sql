-- The append-only log and the read models built from it (PostgreSQL).
--
-- A record's bytes are stored exactly as written at append (bytea, never jsonb, which would
-- reformat them); `leaf_hash` is SHA-256(0x00 || record). The log tables refuse UPDATE, DELETE
-- and TRUNCATE. Identifiers (stream names, bodies, members, key ids) are ASCII and compare
-- byte by byte (COLLATE "C"): cheaper than a locale's collation, and the order is the same on
-- every server.

-- The single head row: the newest record's position and recording time. Every appending transaction locks
-- it (SELECT ... FOR UPDATE) before reading anything else, so appenders, from any number of
-- replicas, take turns, and a rolled-back transaction leaves no hole.
CREATE TABLE log_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    position bigint NOT NULL CHECK (position >= 0),
    -- The newest record's recording time, RFC 3339 with nanoseconds (timestamptz keeps only
    -- microseconds); NULL while the log is empty. Kept here, not read from the newest record, so
    -- the locking read returns the head as the previous holder of the lock left it.
    recorded_at text
);

INSERT INTO log_head (singleton, position, recorded_at) VALUES (true, 0, NULL);

CREATE TABLE log_records (
    position bigint PRIMARY KEY CHECK (position >= 1),
    stream text COLLATE "C" NOT NULL,
    version bigint NOT NULL CHECK (version >= 1),
    event_type text NOT NULL,
    command_id uuid,
    record bytea NOT NULL,
    leaf_hash bytea NOT NULL CHECK (octet_length(leaf_hash) = 32),
    UNIQUE (stream, version)
);

-- One row per accepted command: its content digest (payload and signature) and the positions
-- of the records it caused. No foreign key: the rows are written by the same statement as the
-- records, and a key check would lock (and so write to) every referenced record row.
CREATE TABLE log_commands (
    command_id uuid PRIMARY KEY,
    digest bytea NOT NULL CHECK (octet_length(digest) = 32),
    first_position bigint NOT NULL CHECK (first_position >= 1),
    record_count bigint NOT NULL CHECK (record_count >= 1)
);

CREATE FUNCTION log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Statement-level, so even a change that matches no row is refused; TRUNCATE needs its own.
CREATE TRIGGER log_records_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON log_records
    FOR EACH STATEMENT EXECUTE FUNCTION log_refuse_change();

CREATE TRIGGER log_commands_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON log_commands
    FOR EACH STATEMENT EXECUTE FUNCTION log_refuse_change();

-- Aborts the statement it is called in unless `condition` holds: the store's batch statement
-- uses it to write nothing when the head is not where the batch was planned against.
CREATE FUNCTION log_assert(condition boolean, message text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF condition IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = 'U0001', MESSAGE = message;
    END IF;
    RETURN true;
END
$$;

-- Read models: pure folds of the log, written in the append's transaction, rebuildable.
-- Every vote rewrites its circulation's row: room on each page lets PostgreSQL keep the new
-- version beside the old one without touching the indexes (a HOT update).
CREATE TABLE circulation_status (
    circulation uuid PRIMARY KEY,
    body text COLLATE "C" NOT NULL,
    state text NOT NULL CHECK (state IN ('open', 'closed')),
    -- Fixed-width RFC 3339 with nanoseconds (timestamptz keeps only microseconds), so text order
    -- is time order.
    deadline text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    -- The domain's CirculationStatus as JSON text: written and read whole, never queried inside,
    -- so PostgreSQL need not parse it on every vote.
    status text NOT NULL
) WITH (fillfactor = 50);

CREATE INDEX circulation_status_body ON circulation_status (body, state, deadline);
CREATE INDEX circulation_status_open_deadline ON circulation_status (deadline) WHERE state = 'open';

CREATE TABLE inbox (
    body text COLLATE "C" NOT NULL,
    member text COLLATE "C" NOT NULL,
    circulation uuid NOT NULL,
    PRIMARY KEY (body, member, circulation)
);

CREATE INDEX inbox_circulation ON inbox (circulation);

CREATE TABLE key_status (
    body text COLLATE "C" NOT NULL,
    key_id text COLLATE "C" NOT NULL,
    holder text COLLATE "C" NOT NULL,
    state text NOT NULL CHECK (state IN ('active', 'revoked')),
    status text NOT NULL,
    PRIMARY KEY (body, key_id)
) WITH (fillfactor = 50);

CREATE INDEX key_status_key ON key_status (key_id);
