-- UBO declarations (the ultimate beneficial owners of a BUSINESS or PARTNERSHIP legal user)
-- and their UBOs; and, on KYC documents, when their submission was asked for. SQLite variant: see ../postgres.

-- Written when a document's submission (upload every page, then ask for validation) is
-- asked for: the KYC sweep resumes an interrupted submission.
ALTER TABLE mangopay_documents ADD COLUMN submission_requested_at TIMESTAMP;

CREATE TABLE mangopay_ubo_declarations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    -- As Mangopay last said (CREATED, VALIDATION_ASKED, INCOMPLETE, VALIDATED, REFUSED or a
    -- later value, kept as it came); NULL until the declaration is created at Mangopay.
    status TEXT,
    -- `Reason` and `Message`: why it was REFUSED or found INCOMPLETE.
    reason TEXT,
    message TEXT,
    processed_at TIMESTAMP,
    mangopay_created_at TIMESTAMP,
    -- Written when the declaration's submission (create every UBO, then ask for validation)
    -- is asked for: the KYC sweep resumes an interrupted submission.
    submission_requested_at TIMESTAMP,
    -- Written before the validation request is sent: no UBO is added from then on.
    validation_asked_at TIMESTAMP,
    status_checks INTEGER NOT NULL DEFAULT 0,
    status_checked_at TIMESTAMP,
    mangopay_id TEXT UNIQUE,
    sync_state TEXT NOT NULL DEFAULT 'new'
        CHECK (sync_state IN ('new', 'pending', 'synced', 'failed')),
    create_idempotency_key TEXT UNIQUE,
    create_idempotency_key_at TIMESTAMP,
    create_sent_at TIMESTAMP,
    create_key_spent BOOLEAN NOT NULL DEFAULT 0,
    create_key_version BIGINT,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    row_version BIGINT NOT NULL DEFAULT 1,
    dirty BOOLEAN NOT NULL DEFAULT 0,
    sync_attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_at TIMESTAMP,
    api_payload TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX mangopay_ubo_declarations_user_idx ON mangopay_ubo_declarations (user_id);
CREATE INDEX mangopay_ubo_declarations_sync_state_idx ON mangopay_ubo_declarations (sync_state);
CREATE INDEX mangopay_ubo_declarations_creates_due_idx ON mangopay_ubo_declarations (id)
    WHERE mangopay_id IS NULL AND sync_state IN ('new', 'pending');
CREATE INDEX mangopay_ubo_declarations_updates_due_idx ON mangopay_ubo_declarations (id)
    WHERE dirty;
CREATE INDEX mangopay_ubo_declarations_status_idx ON mangopay_ubo_declarations (status);

CREATE TABLE mangopay_ubos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    declaration_id BIGINT NOT NULL REFERENCES mangopay_ubo_declarations (id),
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    address_line1 TEXT,
    address_line2 TEXT,
    address_city TEXT,
    address_region TEXT,
    address_postal_code TEXT,
    address_country TEXT,
    nationality TEXT NOT NULL,
    birthday DATE NOT NULL,
    birthplace_city TEXT NOT NULL,
    birthplace_country TEXT NOT NULL,
    -- `IsActive`: FALSE once the UBO is disregarded (irreversible).
    is_active BOOLEAN NOT NULL DEFAULT 1,
    mangopay_id TEXT UNIQUE,
    mangopay_created_at TIMESTAMP,
    -- pending: not sent; sending: sent with create_key, answer not recorded; created;
    -- refused: Mangopay refused it (last_error says why); unknown: whether Mangopay created it
    -- cannot be learnt (an operator decides).
    create_state TEXT NOT NULL DEFAULT 'pending'
        CHECK (create_state IN ('pending', 'sending', 'created', 'refused', 'unknown')),
    create_key TEXT UNIQUE,
    create_key_at TIMESTAMP,
    create_attempts INTEGER NOT NULL DEFAULT 0,
    -- The fields changed since Mangopay last took them: an update (PUT) is due.
    dirty BOOLEAN NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    last_error TEXT,
    last_error_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX mangopay_ubos_declaration_idx ON mangopay_ubos (declaration_id);
