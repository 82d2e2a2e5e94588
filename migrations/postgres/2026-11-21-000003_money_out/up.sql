-- Wallets, where money goes (legacy bank accounts and recipients), transfers and pay-outs.
-- Every table carries the sync core's columns (src/sync/mod.rs). Amounts are integers in the
-- currency's minor units, next to the ISO 4217 code: never floats.

CREATE TABLE mangopay_wallets (
    id BIGSERIAL PRIMARY KEY,
    owner_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    currency VARCHAR(3) NOT NULL,
    description VARCHAR(255) NOT NULL,
    tag VARCHAR(255),
    -- The last balance read from Mangopay, and when.
    balance_amount BIGINT,
    balance_read_at TIMESTAMP,
    funds_type VARCHAR(16),
    mangopay_created_at TIMESTAMP,
    mangopay_id VARCHAR(128) UNIQUE,
    sync_state VARCHAR(16) NOT NULL DEFAULT 'new'
        CHECK (sync_state IN ('new', 'pending', 'synced', 'failed')),
    create_idempotency_key VARCHAR(36) UNIQUE,
    create_idempotency_key_at TIMESTAMP,
    create_sent_at TIMESTAMP,
    create_key_spent BOOLEAN NOT NULL DEFAULT FALSE,
    create_key_version BIGINT,
    lease_owner VARCHAR(64),
    lease_until TIMESTAMP,
    row_version BIGINT NOT NULL DEFAULT 1,
    dirty BOOLEAN NOT NULL DEFAULT FALSE,
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
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    account_type VARCHAR(8) NOT NULL CHECK (account_type IN ('IBAN', 'GB', 'US', 'CA', 'OTHER')),
    owner_name VARCHAR(255) NOT NULL,
    owner_address_line1 VARCHAR(255),
    owner_address_line2 VARCHAR(255),
    owner_address_city VARCHAR(255),
    owner_address_region VARCHAR(255),
    owner_address_postal_code VARCHAR(255),
    owner_address_country VARCHAR(2),
    iban VARCHAR(34),
    bic VARCHAR(11),
    sort_code VARCHAR(6),
    account_number VARCHAR(50),
    aba VARCHAR(9),
    deposit_account_type VARCHAR(16),
    branch_code VARCHAR(5),
    institution_number VARCHAR(4),
    bank_name VARCHAR(50),
    country VARCHAR(2),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    tag VARCHAR(255),
    mangopay_created_at TIMESTAMP,
    mangopay_id VARCHAR(128) UNIQUE,
    sync_state VARCHAR(16) NOT NULL DEFAULT 'new'
        CHECK (sync_state IN ('new', 'pending', 'synced', 'failed')),
    create_idempotency_key VARCHAR(36) UNIQUE,
    create_idempotency_key_at TIMESTAMP,
    create_sent_at TIMESTAMP,
    create_key_spent BOOLEAN NOT NULL DEFAULT FALSE,
    create_key_version BIGINT,
    lease_owner VARCHAR(64),
    lease_until TIMESTAMP,
    row_version BIGINT NOT NULL DEFAULT 1,
    dirty BOOLEAN NOT NULL DEFAULT FALSE,
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
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    display_name VARCHAR(50) NOT NULL,
    payout_method_type VARCHAR(32) NOT NULL,
    recipient_type VARCHAR(16) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    country VARCHAR(2),
    recipient_scope VARCHAR(16) NOT NULL DEFAULT 'PAYOUT',
    individual_first_name VARCHAR(255),
    individual_last_name VARCHAR(255),
    business_name VARCHAR(255),
    holder_address_line1 VARCHAR(255),
    holder_address_line2 VARCHAR(255),
    holder_address_city VARCHAR(255),
    holder_address_region VARCHAR(255),
    holder_address_postal_code VARCHAR(255),
    holder_address_country VARCHAR(2),
    -- The LocalBankTransfer or InternationalBankTransfer object, as sent (JSON): its keys
    -- depend on the currency and country.
    account_details TEXT NOT NULL,
    status VARCHAR(32),
    pending_redirect_url TEXT,
    -- Following a PENDING recipient (its owner's authentication) until it settles.
    status_checks INTEGER NOT NULL DEFAULT 0,
    status_checked_at TIMESTAMP,
    tag VARCHAR(255),
    mangopay_created_at TIMESTAMP,
    mangopay_id VARCHAR(128) UNIQUE,
    sync_state VARCHAR(16) NOT NULL DEFAULT 'new'
        CHECK (sync_state IN ('new', 'pending', 'synced', 'failed')),
    create_idempotency_key VARCHAR(36) UNIQUE,
    create_idempotency_key_at TIMESTAMP,
    create_sent_at TIMESTAMP,
    create_key_spent BOOLEAN NOT NULL DEFAULT FALSE,
    create_key_version BIGINT,
    lease_owner VARCHAR(64),
    lease_until TIMESTAMP,
    row_version BIGINT NOT NULL DEFAULT 1,
    dirty BOOLEAN NOT NULL DEFAULT FALSE,
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
    id BIGSERIAL PRIMARY KEY,
    author_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    credited_user_id BIGINT REFERENCES mangopay_users (id),
    debited_wallet_id BIGINT NOT NULL REFERENCES mangopay_wallets (id),
    credited_wallet_id BIGINT NOT NULL REFERENCES mangopay_wallets (id),
    currency VARCHAR(3) NOT NULL,
    debited_amount BIGINT NOT NULL,
    fees_amount BIGINT NOT NULL DEFAULT 0,
    credited_amount BIGINT,
    status VARCHAR(32),
    result_code VARCHAR(16),
    result_message TEXT,
    execution_date TIMESTAMP,
    tag VARCHAR(255),
    mangopay_created_at TIMESTAMP,
    mangopay_id VARCHAR(128) UNIQUE,
    sync_state VARCHAR(16) NOT NULL DEFAULT 'new'
        CHECK (sync_state IN ('new', 'pending', 'synced', 'failed')),
    create_idempotency_key VARCHAR(36) UNIQUE,
    create_idempotency_key_at TIMESTAMP,
    create_sent_at TIMESTAMP,
    create_key_spent BOOLEAN NOT NULL DEFAULT FALSE,
    create_key_version BIGINT,
    lease_owner VARCHAR(64),
    lease_until TIMESTAMP,
    row_version BIGINT NOT NULL DEFAULT 1,
    dirty BOOLEAN NOT NULL DEFAULT FALSE,
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
    id BIGSERIAL PRIMARY KEY,
    author_id BIGINT NOT NULL REFERENCES mangopay_users (id),
    debited_wallet_id BIGINT NOT NULL REFERENCES mangopay_wallets (id),
    -- Where the money goes: a legacy bank account or a recipient, exactly one.
    bank_account_id BIGINT REFERENCES mangopay_bank_accounts (id),
    recipient_id BIGINT REFERENCES mangopay_recipients (id),
    currency VARCHAR(3) NOT NULL,
    debited_amount BIGINT NOT NULL,
    fees_amount BIGINT NOT NULL DEFAULT 0,
    credited_amount BIGINT,
    bank_wire_ref VARCHAR(255),
    payout_mode_requested VARCHAR(32) NOT NULL DEFAULT 'STANDARD',
    mode_applied VARCHAR(32),
    status VARCHAR(32),
    result_code VARCHAR(16),
    result_message TEXT,
    fallback_reason_code VARCHAR(16),
    fallback_reason_message TEXT,
    execution_date TIMESTAMP,
    tag VARCHAR(255),
    mangopay_created_at TIMESTAMP,
    -- Following the pay-out until it settles, and the application's hook on success.
    status_checks INTEGER NOT NULL DEFAULT 0,
    status_checked_at TIMESTAMP,
    succeeded_hook_at TIMESTAMP,
    mangopay_id VARCHAR(128) UNIQUE,
    sync_state VARCHAR(16) NOT NULL DEFAULT 'new'
        CHECK (sync_state IN ('new', 'pending', 'synced', 'failed')),
    create_idempotency_key VARCHAR(36) UNIQUE,
    create_idempotency_key_at TIMESTAMP,
    create_sent_at TIMESTAMP,
    create_key_spent BOOLEAN NOT NULL DEFAULT FALSE,
    create_key_version BIGINT,
    lease_owner VARCHAR(64),
    lease_until TIMESTAMP,
    row_version BIGINT NOT NULL DEFAULT 1,
    dirty BOOLEAN NOT NULL DEFAULT FALSE,
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
