-- The aggregates' declared read models (internal/store/readmodel). Their rows are read and
-- written by statements derived from each declaration's table and columns, built by the
-- functions of readmodel.go; this file holds the ones that depend on no declaration.

-- name: ReadmodelColumns
-- The columns of table $1 (a quoted name, as to_regclass takes it), none when there is no such
-- table: what a read model's declaration is checked against.
SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped
