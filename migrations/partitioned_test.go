package migrations_test

import (
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/migrations"
)

// Migration 4 moves the events of an unpartitioned log into the partitioned table unchanged,
// records their ids, and positions continue after the last one handed out.
func TestPartitioningKeepsExistingEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openDB(t, dbtest.EmptyURL(t))
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS(),
		goose.WithDisableGlobalRegistry(true), goose.WithTableName("strata_schema_migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	const rows = `SELECT string_agg(concat_ws(' ', position, transaction_id, event_id, stream_id, category, version, type, schema_version, data, metadata, recorded_at), E'\n' ORDER BY transaction_id, position) FROM events`
	if _, err := db.ExecContext(ctx, `INSERT INTO events (event_id, stream_id, version, type, schema_version, data, metadata)
SELECT gen_random_uuid(), 'order-' || (g % 3), g / 3 + 1, 'T' || g, 1 + g % 2, jsonb_build_object('g', g), '{"m": true}' FROM generate_series(0, 8) g`); err != nil {
		t.Fatal(err)
	}
	// A position drawn and rolled back: the next one must still be new.
	if _, err := db.ExecContext(ctx, `SELECT nextval('events_position_seq')`); err != nil {
		t.Fatal(err)
	}
	var before string
	if err := db.QueryRowContext(ctx, rows).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Up(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	var after string
	if err := db.QueryRowContext(ctx, rows).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("events after partitioning:\n%s\nbefore:\n%s", after, before)
	}
	var ids, partitioned int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM event_ids i JOIN events e USING (event_id, transaction_id, position)),
	(SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass)`).Scan(&ids, &partitioned); err != nil {
		t.Fatal(err)
	}
	if ids != 9 || partitioned != 3 {
		t.Fatalf("%d event ids recorded, %d partitions; want 9 and 3", ids, partitioned)
	}
	var next int64
	if err := db.QueryRowContext(ctx, `INSERT INTO events (event_id, stream_id, version, type, data) VALUES (gen_random_uuid(), 'x-1', 1, 'T', '{}') RETURNING position`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if next != 11 {
		t.Fatalf("the first position after partitioning is %d, want 11 (9 stored, 10 drawn and lost)", next)
	}

	// Down puts every event back into one table, and Up again partitions it again.
	if _, err := db.ExecContext(ctx, `DELETE FROM events WHERE stream_id = 'x-1'`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, rows).Scan(&after); err != nil || after != before {
		t.Fatalf("events after migrating down (%v):\n%s\nbefore:\n%s", err, after, before)
	}
	if err := migrations.Up(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, rows).Scan(&after); err != nil || after != before {
		t.Fatalf("events after migrating up again (%v):\n%s\nbefore:\n%s", err, after, before)
	}
}

// The statistics index (migration 8) is on every partition: those made before it, one made
// later by strata_make_event_partition, and one attached by hand as a restore attaches an
// archived partition. (docs/benchmarks.md shows the plan: an index-only scan.)
func TestStatisticsIndexIsOnEveryPartition(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openDB(t, dbtest.URL(t))
	if _, err := db.ExecContext(ctx, `SELECT strata_make_event_partition(900000000, 901000000)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE events_restored (LIKE events INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS);
ALTER TABLE events_restored ADD CONSTRAINT events_restored_range CHECK (position >= 950000000 AND position < 951000000);
ALTER TABLE events ATTACH PARTITION events_restored FOR VALUES FROM (950000000) TO (951000000)`); err != nil {
		t.Fatal(err)
	}
	var partitions, indexed int
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE EXISTS (
	SELECT 1 FROM pg_inherits pi JOIN pg_class i ON i.oid = pi.inhrelid JOIN pg_index x ON x.indexrelid = i.oid
	WHERE pi.inhparent = 'events_recorded_at_idx'::regclass AND x.indrelid = p.inhrelid))
FROM pg_inherits p WHERE p.inhparent = 'events'::regclass`).Scan(&partitions, &indexed); err != nil {
		t.Fatal(err)
	}
	if partitions < 4 || indexed != partitions {
		t.Errorf("%d of %d partitions have the statistics index", indexed, partitions)
	}
}
