-- Read models kept by projectors (internal/runtime/projection), and each projector's checkpoint.
-- A read model's rows change only together with its checkpoint, in one transaction, so every
-- event is applied exactly once. Rebuilds fill a copy (CREATE TABLE ... LIKE) and swap it in.

-- +goose Up
CREATE TABLE projection_checkpoints (
    -- a projector's name; a rebuild in progress has its own row, '<name>.rebuild'
    name       text        PRIMARY KEY,
    -- the global position (eventstore.Position.String) the read model has applied up to;
    -- '' before the first event. Position strings sort like positions.
    position   text        NOT NULL DEFAULT '',
    -- events the projector could not decode and skipped (logged when it happens)
    skipped    bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    email      text        NOT NULL,
    status     text        NOT NULL,
    version    bigint      NOT NULL,
    position   text        NOT NULL, -- of the last event applied
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX users_status_id ON users (status, id);

CREATE TABLE orders (
    id              uuid        PRIMARY KEY,
    customer_id     uuid        NOT NULL,
    status          text        NOT NULL,
    items           jsonb       NOT NULL, -- [{sku, quantity, unitPrice (minor units)}]
    total           bigint      NOT NULL, -- minor units
    carrier         text        NOT NULL DEFAULT '',
    tracking_number text        NOT NULL DEFAULT '',
    cancel_reason   text        NOT NULL DEFAULT '',
    version         bigint      NOT NULL,
    position        text        NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX orders_customer_id ON orders (customer_id, id);
CREATE INDEX orders_status_id ON orders (status, id);

INSERT INTO projection_checkpoints (name) VALUES ('users'), ('orders');

-- +goose Down
DROP TABLE orders;
DROP TABLE users;
DROP TABLE projection_checkpoints;
