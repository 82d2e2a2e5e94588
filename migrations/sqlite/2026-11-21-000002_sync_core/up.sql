-- The columns of the generic sync core (src/sync), on the users' table. Every resource table
-- carries the same set: see src/sync/mod.rs for what each one means to the protocol.
-- SQLite variant: see ../postgres for the same schema with PostgreSQL types.
ALTER TABLE mangopay_users ADD COLUMN create_sent_at TIMESTAMP;
ALTER TABLE mangopay_users ADD COLUMN create_key_spent BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE mangopay_users ADD COLUMN create_key_version BIGINT;
ALTER TABLE mangopay_users ADD COLUMN lease_owner TEXT;
ALTER TABLE mangopay_users ADD COLUMN lease_until TIMESTAMP;
ALTER TABLE mangopay_users ADD COLUMN row_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE mangopay_users ADD COLUMN dirty BOOLEAN NOT NULL DEFAULT 0;
-- What the sweep looks for: creates not confirmed, updates owed.
CREATE INDEX mangopay_users_creates_due_idx ON mangopay_users (id)
    WHERE mangopay_id IS NULL AND sync_state IN ('new', 'pending');
CREATE INDEX mangopay_users_updates_due_idx ON mangopay_users (id) WHERE dirty;

-- Objects Mangopay created for a key a row no longer holds (a duplicate an operator must look
-- at): kept here for good, whatever the row's later errors.
CREATE TABLE mangopay_orphans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name TEXT NOT NULL,
    row_id BIGINT NOT NULL,
    mangopay_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    row_mangopay_id TEXT,
    found_at TIMESTAMP NOT NULL,
    UNIQUE (table_name, mangopay_id)
);
