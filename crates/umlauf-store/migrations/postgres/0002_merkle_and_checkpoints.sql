-- The log's Merkle tree (RFC 6962 over the stored record bytes) and its signed checkpoints
-- (PostgreSQL).
--
-- `merkle_subtrees` holds the hash of every complete, aligned subtree: the 2^level leaves from
-- idx * 2^level on; level 0 holds the leaf hashes. Every proof and root is chained from at most
-- a few dozen of them, so no request reads the log. Rows are written in the append's
-- transaction, as the appended records complete their subtrees, and never change.
CREATE TABLE merkle_subtrees (
    level smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx bigint NOT NULL CHECK (idx >= 0),
    hash bytea NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- One signed checkpoint note (C2SP tlog-checkpoint in a signed note) per committed batch, for
-- the tree size after it.
CREATE TABLE checkpoints (
    size bigint PRIMARY KEY CHECK (size >= 1),
    note text NOT NULL
);

CREATE TRIGGER merkle_subtrees_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON merkle_subtrees
    FOR EACH STATEMENT EXECUTE FUNCTION log_refuse_change();

CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION log_refuse_change();
