-- KYC documents and their pages. A page row records where its file is, what the checks found
-- (format, size, SHA-256) and how far its upload went: never the file's bytes, which Mangopay
-- forbids platforms to keep. SQLite variant: see ../postgres.

CREATE TABLE mangopay_documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    document_type TEXT NOT NULL,
    -- As Mangopay last said (CREATED, VALIDATION_ASKED, VALIDATED, REFUSED, OUT_OF_DATE or a
    -- later value, kept as it came); NULL until the document is created at Mangopay.
    status TEXT,
    refused_reason_type TEXT,
    refused_reason_message TEXT,
    -- `Flags`, a JSON array of codes.
    flags TEXT,
    processed_at TIMESTAMP,
    tag TEXT,
    mangopay_created_at TIMESTAMP,
    -- When validation was last asked (the PUT sent), and status checks made since.
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
CREATE INDEX mangopay_documents_user_idx ON mangopay_documents (user_id);
CREATE INDEX mangopay_documents_sync_state_idx ON mangopay_documents (sync_state);
CREATE INDEX mangopay_documents_creates_due_idx ON mangopay_documents (id)
    WHERE mangopay_id IS NULL AND sync_state IN ('new', 'pending');
CREATE INDEX mangopay_documents_updates_due_idx ON mangopay_documents (id) WHERE dirty;
CREATE INDEX mangopay_documents_status_idx ON mangopay_documents (status);

CREATE TABLE mangopay_pages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id BIGINT NOT NULL REFERENCES mangopay_documents (id),
    -- 1 to 5: the order pages are uploaded in.
    position INTEGER NOT NULL CHECK (position BETWEEN 1 AND 5),
    -- 'file': the application's own file, read when uploaded, never removed by the library;
    -- 'staged': a copy the library made of bytes the application handed it, removed once
    -- the upload is settled.
    source_kind TEXT NOT NULL CHECK (source_kind IN ('file', 'staged')),
    source_path TEXT NOT NULL,
    file_format TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    -- pending: not sent; sending: sent with upload_key, answer not recorded; uploaded;
    -- refused: Mangopay refused it (last_error says why); unknown: sent, and whether Mangopay
    -- kept it cannot be learnt (an operator decides).
    upload_state TEXT NOT NULL DEFAULT 'pending'
        CHECK (upload_state IN ('pending', 'sending', 'uploaded', 'refused', 'unknown')),
    upload_key TEXT UNIQUE,
    upload_key_at TIMESTAMP,
    upload_attempts INTEGER NOT NULL DEFAULT 0,
    uploaded_at TIMESTAMP,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    last_error TEXT,
    last_error_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (document_id, position)
);
