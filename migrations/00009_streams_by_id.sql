-- An index on stream ids in byte order (collation "C") whatever the database's collation, so
-- that listing streams by id prefix (the streams query, the Explorer's search) reads one range
-- of it in order, and keyset paging continues where the last page ended. The primary key's
-- index is in the database's collation, in which a prefix is not one range in general.

-- +goose Up
CREATE INDEX streams_id_bytes_idx ON streams (stream_id COLLATE "C");

-- +goose Down
DROP INDEX streams_id_bytes_idx;
