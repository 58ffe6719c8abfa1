-- The log's Merkle tree (RFC 6962 over the stored record bytes) and its signed checkpoints
-- (SQLite).
--
-- `merkle_subtrees` holds the hash of every complete, aligned subtree: the 2^level leaves from
-- idx * 2^level on; level 0 holds the leaf hashes. Every proof and root is chained from at most
-- a few dozen of them, so no request reads the log. Rows are written in the append's
-- transaction, as the appended records complete their subtrees, and never change.
CREATE TABLE merkle_subtrees (
    level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

-- One signed checkpoint note (C2SP tlog-checkpoint in a signed note) per committed batch, for
-- the tree size after it.
CREATE TABLE checkpoints (
    size INTEGER PRIMARY KEY CHECK (size >= 1),
    note TEXT NOT NULL
) STRICT;

CREATE TRIGGER merkle_subtrees_refuse_update BEFORE UPDATE ON merkle_subtrees
BEGIN
    SELECT RAISE(ABORT, 'the log is append-only: merkle_subtrees cannot be updated');
END;

CREATE TRIGGER merkle_subtrees_refuse_delete BEFORE DELETE ON merkle_subtrees
BEGIN
    SELECT RAISE(ABORT, 'the log is append-only: merkle_subtrees cannot be deleted');
END;

CREATE TRIGGER checkpoints_refuse_update BEFORE UPDATE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'the log is append-only: checkpoints cannot be updated');
END;

CREATE TRIGGER checkpoints_refuse_delete BEFORE DELETE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'the log is append-only: checkpoints cannot be deleted');
END;
