-- The batch statement moves the head last (PostgreSQL).
--
-- A batch's statement writes its rows first and takes the head row's lock only at its end, in
-- this function. A writer can so send its next batch while the previous one still commits: the
-- next batch's rows are written meanwhile, and its head move waits for the previous batch to end.
-- Every statement of a function called from a statement sees what committed before it began, so
-- after the wait the head is read as the previous batch left it. The head moves only if it stands
-- where the batch was planned (`expected`) and, when `expected_leaf` is given, the record at that
-- position is the one the writer planned there: a head that another writer moved to the same
-- position with other records is not mistaken for its own. Otherwise the statement aborts
-- (SQLSTATE U0001) and writes nothing. A NULL `new_position` leaves the head alone (read models
-- only, or the tree's backfill). `written` is the count of rows the statement's other parts wrote:
-- taking it as an argument makes those parts run to the end before the head is locked.
CREATE FUNCTION log_move_head(
    expected bigint,
    expected_leaf bytea,
    new_position bigint,
    new_recorded_at text,
    written bigint
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    current bigint;
BEGIN
    IF new_position IS NULL THEN
        RETURN written;
    END IF;
    SELECT position INTO current FROM log_head FOR UPDATE;
    IF current IS DISTINCT FROM expected
       OR (expected_leaf IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM log_records WHERE position = expected AND leaf_hash = expected_leaf))
    THEN
        RAISE EXCEPTION USING ERRCODE = 'U0001', MESSAGE = 'the head has moved';
    END IF;
    UPDATE log_head SET position = new_position, recorded_at = new_recorded_at;
    RETURN written;
END
$$;
