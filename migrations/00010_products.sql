-- The Product aggregate's read model (internal/domain/product): one row per product, written by
-- the runtime from the columns the aggregate declares, plus the runtime's own (id, version,
-- position, created_at, updated_at, applied).

-- +goose Up
CREATE TABLE products (
    id         uuid        PRIMARY KEY,
    sku        text        NOT NULL,
    name       text        NOT NULL,
    price      bigint      NOT NULL, -- minor units
    stock      bigint      NOT NULL,
    status     text        NOT NULL,
    version    bigint      NOT NULL,
    position   text        NOT NULL, -- of the last event applied
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    applied    bigint      NOT NULL DEFAULT 0
);
CREATE INDEX products_status_id ON products (status, id);
INSERT INTO projection_checkpoints (name) VALUES ('products');

-- +goose Down
DELETE FROM projection_checkpoints WHERE name IN ('products', 'products.rebuild');
DROP TABLE products;
