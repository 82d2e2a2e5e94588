-- The columns of the generic sync core (src/sync), on the users' table. Every resource table
-- carries the same set: see src/sync/mod.rs for what each one means to the protocol.
ALTER TABLE mangopay_users
    ADD COLUMN create_sent_at TIMESTAMP,
    ADD COLUMN create_key_spent BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN create_key_version BIGINT,
    ADD COLUMN lease_owner VARCHAR(64),
    ADD COLUMN lease_until TIMESTAMP,
    ADD COLUMN row_version BIGINT NOT NULL DEFAULT 1,
    ADD COLUMN dirty BOOLEAN NOT NULL DEFAULT FALSE;
-- What the sweep looks for: creates not confirmed, updates owed.
CREATE INDEX mangopay_users_creates_due_idx ON mangopay_users (id)
    WHERE mangopay_id IS NULL AND sync_state IN ('new', 'pending');
CREATE INDEX mangopay_users_updates_due_idx ON mangopay_users (id) WHERE dirty;

-- Objects Mangopay created for a key a row no longer holds (a duplicate an operator must look
-- at): kept here for good, whatever the row's later errors.
CREATE TABLE mangopay_orphans (
    id BIGSERIAL PRIMARY KEY,
    table_name VARCHAR(64) NOT NULL,
    row_id BIGINT NOT NULL,
    mangopay_id VARCHAR(128) NOT NULL,
    idempotency_key VARCHAR(36) NOT NULL,
    row_mangopay_id VARCHAR(128),
    found_at TIMESTAMP NOT NULL,
    UNIQUE (table_name, mangopay_id)
);
