-- Wallets, where money goes (legacy bank accounts and recipients), transfers and pay-outs.
-- Every table carries the sync core's columns (src/sync/mod.rs). Amounts are integers in the
-- currency's minor units, next to the ISO 4217 code: never floats. SQLite variant: see ../postgres.

CREATE TABLE mangopay_wallets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    tag TEXT,
    -- The last balance read from Mangopay, and when.
    balance_amount BIGINT,
    balance_read_at TIMESTAMP,
    funds_type TEXT,
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
CREATE INDEX mangopay_wallets_owner_idx ON mangopay_wallets (owner_id);
CREATE INDEX mangopay_wallets_sync_state_idx ON mangopay_wallets (sync_state);
CREATE INDEX mangopay_wallets_creates_due_idx ON mangopay_wallets (id)
    WHERE mangopay_id IS NULL AND sync_state IN ('new', 'pending');
CREATE INDEX mangopay_wallets_updates_due_idx ON mangopay_wallets (id) WHERE dirty;

CREATE TABLE mangopay_bank_accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    account_type TEXT NOT NULL CHECK (account_type IN ('IBAN', 'GB', 'US', 'CA', 'OTHER')),
    owner_name TEXT NOT NULL,
    owner_address_line1 TEXT,
    owner_address_line2 TEXT,
    owner_address_city TEXT,
    owner_address_region TEXT,
    owner_address_postal_code TEXT,
    owner_address_country TEXT,
    iban TEXT,
    bic TEXT,
    sort_code TEXT,
    account_number TEXT,
    aba TEXT,
    deposit_account_type TEXT,
    branch_code TEXT,
    institution_number TEXT,
    bank_name TEXT,
    country TEXT,
    active BOOLEAN NOT NULL DEFAULT 1,
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
CREATE INDEX mangopay_bank_accounts_user_idx ON mangopay_bank_accounts (user_id);
CREATE INDEX mangopay_bank_accounts_sync_state_idx ON mangopay_bank_accounts (sync_state);
CREATE INDEX mangopay_bank_accounts_creates_due_idx ON mangopay_bank_accounts (id)
    WHERE mangopay_id IS NULL AND sync_state IN ('new', 'pending');
CREATE INDEX mangopay_bank_accounts_updates_due_idx ON mangopay_bank_accounts (id) WHERE dirty;

CREATE TABLE mangopay_recipients (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    display_name TEXT NOT NULL,
    payout_method_type TEXT NOT NULL,
    recipient_type TEXT NOT NULL,
    currency TEXT NOT NULL,
    country TEXT,
    recipient_scope TEXT NOT NULL DEFAULT 'PAYOUT',
    individual_first_name TEXT,
    individual_last_name TEXT,
    business_name TEXT,
    holder_address_line1 TEXT,
    holder_address_line2 TEXT,
    holder_address_city TEXT,
    holder_address_region TEXT,
    holder_address_postal_code TEXT,
    holder_address_country TEXT,
    -- The LocalBankTransfer or InternationalBankTransfer object, as sent (JSON): its keys
    -- depend on the currency and country.
    account_details TEXT NOT NULL,
    status TEXT,
    pending_redirect_url TEXT,
    -- Following a PENDING recipient (its owner's authentication) until it settles.
    status_checks INTEGER NOT NULL DEFAULT 0,
    status_checked_at TIMESTAMP,
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
CREATE INDEX mangopay_recipients_user_idx ON mangopay_recipients (user_id);
CREATE INDEX mangopay_recipients_sync_state_idx ON mangopay_recipients (sync_state);
CREATE INDEX mangopay_recipients_creates_due_idx ON mangopay_recipients (id)
    WHERE mangopay_id IS NULL AND sync_state IN ('new', 'pending');
CREATE INDEX mangopay_recipients_updates_due_idx ON mangopay_recipients (id) WHERE dirty;

CREATE TABLE mangopay_transfers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    credited_user_id BIGINT REFERENCES mangopay_users (id),
    debited_wallet_id BIGINT NOT NULL REFERENCES mangopay_wallets (id),
    credited_wallet_id BIGINT NOT NULL REFERENCES mangopay_wallets (id),
    currency TEXT NOT NULL,
    debited_amount BIGINT NOT NULL,
    fees_amount BIGINT NOT NULL DEFAULT 0,
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
CREATE INDEX mangopay_transfers_debited_wallet_idx ON mangopay_transfers (debited_wallet_id);
CREATE INDEX mangopay_transfers_credited_wallet_idx ON mangopay_transfers (credited_wallet_id);
CREATE INDEX mangopay_transfers_sync_state_idx ON mangopay_transfers (sync_state);
CREATE INDEX mangopay_transfers_creates_due_idx ON mangopay_transfers (id)
    WHERE mangopay_id IS NULL AND sync_state IN ('new', 'pending');
CREATE INDEX mangopay_transfers_updates_due_idx ON mangopay_transfers (id) WHERE dirty;

CREATE TABLE mangopay_pay_outs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    debited_wallet_id BIGINT NOT NULL REFERENCES mangopay_wallets (id),
    -- Where the money goes: a legacy bank account or a recipient, exactly one.
    bank_account_id BIGINT REFERENCES mangopay_bank_accounts (id),
    recipient_id BIGINT REFERENCES mangopay_recipients (id),
    currency TEXT NOT NULL,
    debited_amount BIGINT NOT NULL,
    fees_amount BIGINT NOT NULL DEFAULT 0,
    credited_amount BIGINT,
    bank_wire_ref TEXT,
    payout_mode_requested TEXT NOT NULL DEFAULT 'STANDARD',
    mode_applied TEXT,
    status TEXT,
    result_code TEXT,
    result_message TEXT,
    fallback_reason_code TEXT,
    fallback_reason_message TEXT,
    execution_date TIMESTAMP,
    tag TEXT,
    mangopay_created_at TIMESTAMP,
    -- Following the pay-out until it settles, and the application's hook on success.
    status_checks INTEGER NOT NULL DEFAULT 0,
    status_checked_at TIMESTAMP,
    succeeded_hook_at TIMESTAMP,
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
    CHECK ((bank_account_id IS NULL) <> (recipient_id IS NULL))
);
CREATE INDEX mangopay_pay_outs_debited_wallet_idx ON mangopay_pay_outs (debited_wallet_id);
CREATE INDEX mangopay_pay_outs_status_idx ON mangopay_pay_outs (status);
CREATE INDEX mangopay_pay_outs_sync_state_idx ON mangopay_pay_outs (sync_state);
CREATE INDEX mangopay_pay_outs_creates_due_idx ON mangopay_pay_outs (id)
    WHERE mangopay_id IS NULL AND sync_state IN ('new', 'pending');
CREATE INDEX mangopay_pay_outs_updates_due_idx ON mangopay_pay_outs (id) WHERE dirty;
