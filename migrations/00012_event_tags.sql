-- Tags (docs/consistency.md): an event may carry up to 32 of them, such as product:42, and
-- queries of the log select events by tags and types. NULL when an event has none, so that the
-- index holds only tagged events: every query by tags (tags @> ...) implies tags IS NOT NULL.
--
-- append_refused is how a conditional append stops before it writes: a statement of its
-- transaction calls it, which aborts the transaction, with a code of class SC and the position
-- it is about as the error's detail:
--   SC001  an event matching the condition lies after the append's read position (its detail);
--   SC002  the read position is not settled yet: a transaction older than it is still running,
--          so no read can have ended there (a position a mutation returned, too soon).

-- +goose Up
ALTER TABLE events ADD COLUMN tags text[];
CREATE INDEX events_tags ON events USING gin (tags) WHERE tags IS NOT NULL;

-- +goose StatementBegin
CREATE FUNCTION append_refused(code text, tx xid8, pos bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = code, MESSAGE = 'append refused by its condition',
		DETAIL = tx::text || ' ' || pos::text;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION append_refused(text, xid8, bigint);
DROP INDEX events_tags;
ALTER TABLE events DROP COLUMN tags;
