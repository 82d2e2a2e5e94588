-- Money in: cards (registered through Mangopay's tokenization server, so card numbers never
-- reach the application), pay-ins (direct and web card, bank wire) and their refunds. Every
-- table carries the sync core's columns (src/sync/mod.rs). No column holds a card number, a
-- CVC or the tokenization server's registration data.

CREATE TABLE mangopay_cards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    currency TEXT,
    card_type TEXT,
    expiration_date TEXT,
    alias TEXT,
    card_provider TEXT,
    country TEXT,
    product TEXT,
    bank_code TEXT,
    active BOOLEAN NOT NULL DEFAULT 1,
    validity TEXT,
    fingerprint TEXT,
    card_holder_name TEXT,
    tag TEXT,
    mangopay_created_at TIMESTAMP,
    info_requested_at TIMESTAMP,
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
CREATE INDEX mangopay_cards_user_idx ON mangopay_cards (user_id);
CREATE INDEX mangopay_cards_sync_state_idx ON mangopay_cards (sync_state);
CREATE INDEX mangopay_cards_creates_due_idx ON mangopay_cards (id)
    WHERE mangopay_id IS NULL AND sync_state IN ('new', 'pending');
CREATE INDEX mangopay_cards_updates_due_idx ON mangopay_cards (id) WHERE dirty;

CREATE TABLE mangopay_card_registrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    currency TEXT NOT NULL,
    card_type TEXT NOT NULL DEFAULT 'CB_VISA_MASTERCARD',
    access_key TEXT,
    preregistration_data TEXT,
    card_registration_url TEXT,
    status TEXT,
    result_code TEXT,
    result_message TEXT,
    -- The card the completed registration made: Mangopay's id and the local row.
    mangopay_card_id TEXT,
    card_id BIGINT REFERENCES mangopay_cards (id),
    tag TEXT,
    mangopay_created_at TIMESTAMP,
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
CREATE INDEX mangopay_card_registrations_user_idx ON mangopay_card_registrations (user_id);
CREATE INDEX mangopay_card_registrations_sync_state_idx ON mangopay_card_registrations (sync_state);
CREATE INDEX mangopay_card_registrations_creates_due_idx ON mangopay_card_registrations (id)
    WHERE mangopay_id IS NULL AND sync_state IN ('new', 'pending');
CREATE INDEX mangopay_card_registrations_updates_due_idx ON mangopay_card_registrations (id) WHERE dirty;

CREATE TABLE mangopay_pay_ins (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- CARD/DIRECT, CARD/WEB or BANK_WIRE/DIRECT.
    payment_type TEXT NOT NULL,
    execution_type TEXT NOT NULL,
    author_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    credited_wallet_id BIGINT NOT NULL REFERENCES mangopay_wallets (id),
    card_id BIGINT REFERENCES mangopay_cards (id),
    currency TEXT NOT NULL,
    -- DebitedFunds and Fees (DeclaredDebitedFunds and DeclaredFees for a bank wire).
    debited_amount BIGINT NOT NULL,
    fees_amount BIGINT NOT NULL DEFAULT 0,
    credited_amount BIGINT,
    secure_mode TEXT,
    secure_mode_needed BOOLEAN,
    statement_descriptor TEXT,
    browser_info TEXT,
    ip_address TEXT,
    -- Where the payer comes back (SecureModeReturnURL, or ReturnURL of a web pay-in) and
    -- where to send them (SecureModeRedirectURL for 3-D Secure, or the payment page's
    -- RedirectURL).
    return_url TEXT,
    redirect_url TEXT,
    culture TEXT,
    card_type TEXT,
    wire_reference TEXT,
    bank_account TEXT,
    status TEXT,
    result_code TEXT,
    result_message TEXT,
    execution_date TIMESTAMP,
    tag TEXT,
    mangopay_created_at TIMESTAMP,
    status_checks INTEGER NOT NULL DEFAULT 0,
    status_checked_at TIMESTAMP,
    follow_at TIMESTAMP,
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
    updated_at TIMESTAMP NOT NULL,
    CHECK ((payment_type = 'CARD') = (card_type IS NOT NULL OR card_id IS NOT NULL))
);
CREATE INDEX mangopay_pay_ins_credited_wallet_idx ON mangopay_pay_ins (credited_wallet_id);
CREATE INDEX mangopay_pay_ins_status_idx ON mangopay_pay_ins (status);
CREATE INDEX mangopay_pay_ins_follow_idx ON mangopay_pay_ins (follow_at)
    WHERE follow_at IS NOT NULL;
CREATE INDEX mangopay_pay_ins_sync_state_idx ON mangopay_pay_ins (sync_state);
CREATE INDEX mangopay_pay_ins_creates_due_idx ON mangopay_pay_ins (id)
    WHERE mangopay_id IS NULL AND sync_state IN ('new', 'pending');
CREATE INDEX mangopay_pay_ins_updates_due_idx ON mangopay_pay_ins (id) WHERE dirty;

CREATE TABLE mangopay_refunds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pay_in_id BIGINT NOT NULL REFERENCES mangopay_pay_ins (id),
    author_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    currency TEXT NOT NULL,
    -- NULL for a full refund until Mangopay says how much it refunded.
    debited_amount BIGINT,
    fees_amount BIGINT,
    partial BOOLEAN NOT NULL DEFAULT 0,
    credited_amount BIGINT,
    status TEXT,
    result_code TEXT,
    result_message TEXT,
    execution_date TIMESTAMP,
    tag TEXT,
    mangopay_created_at TIMESTAMP,
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
CREATE INDEX mangopay_refunds_pay_in_idx ON mangopay_refunds (pay_in_id);
CREATE INDEX mangopay_refunds_sync_state_idx ON mangopay_refunds (sync_state);
CREATE INDEX mangopay_refunds_creates_due_idx ON mangopay_refunds (id)
    WHERE mangopay_id IS NULL AND sync_state IN ('new', 'pending');
CREATE INDEX mangopay_refunds_updates_due_idx ON mangopay_refunds (id) WHERE dirty;
