-- The tags' GIN index without its pending list (fastupdate = off). With the list, every insert
-- of a tagged event lands in an unsorted list that each search reads whole until a vacuum
-- merges it: under a steady stream of tagged appends, each conditional append's check read
-- thousands of pending entries (0.85 ms for 20,000 of them against 0.01 ms merged), and a
-- conditional append cost twice a plain one. Without it each insert pays its own place in the
-- tree (docs/benchmarks.md, "Issue 17"). A partitioned index takes no ALTER ... SET, so it is
-- made again.

-- +goose Up
DROP INDEX events_tags;
CREATE INDEX events_tags ON events USING gin (tags) WITH (fastupdate = off) WHERE tags IS NOT NULL;

-- +goose Down
DROP INDEX events_tags;
CREATE INDEX events_tags ON events USING gin (tags) WHERE tags IS NOT NULL;
