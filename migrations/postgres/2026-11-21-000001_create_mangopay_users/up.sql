-- Mangopay users: one row per user, whatever its kind, so that wallets, bank accounts and KYC
-- documents can reference "a user"; the natural and legal details live in their own tables.
CREATE TABLE mangopay_users (
    id BIGSERIAL PRIMARY KEY,
    person_type VARCHAR(16) NOT NULL CHECK (person_type IN ('NATURAL', 'LEGAL')),
    app_user_ref VARCHAR(255),
    mangopay_id VARCHAR(128) UNIQUE,
    user_category VARCHAR(32) NOT NULL,
    terms_and_conditions_accepted BOOLEAN NOT NULL DEFAULT FALSE,
    terms_and_conditions_accepted_at TIMESTAMP,
    email VARCHAR(254) NOT NULL,
    tag VARCHAR(255),
    kyc_level VARCHAR(32),
    user_status VARCHAR(32),
    mangopay_created_at TIMESTAMP,
    sync_state VARCHAR(16) NOT NULL DEFAULT 'new'
        CHECK (sync_state IN ('new', 'pending', 'synced', 'failed')),
    create_idempotency_key VARCHAR(36) UNIQUE,
    create_idempotency_key_at TIMESTAMP,
    sync_attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_at TIMESTAMP,
    api_payload TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX mangopay_users_app_user_ref_idx ON mangopay_users (app_user_ref);
CREATE INDEX mangopay_users_sync_state_idx ON mangopay_users (sync_state);

CREATE TABLE mangopay_natural_users (
    user_id BIGINT PRIMARY KEY REFERENCES mangopay_users (id) ON DELETE CASCADE,
    first_name VARCHAR(100) NOT NULL,
    last_name VARCHAR(100) NOT NULL,
    birthday DATE,
    nationality VARCHAR(2),
    country_of_residence VARCHAR(2),
    occupation VARCHAR(255),
    income_range INTEGER,
    address_line1 VARCHAR(255),
    address_line2 VARCHAR(255),
    address_city VARCHAR(255),
    address_region VARCHAR(255),
    address_postal_code VARCHAR(255),
    address_country VARCHAR(2)
);

CREATE TABLE mangopay_legal_users (
    user_id BIGINT PRIMARY KEY REFERENCES mangopay_users (id) ON DELETE CASCADE,
    legal_person_type VARCHAR(32) NOT NULL,
    name VARCHAR(255) NOT NULL,
    company_number VARCHAR(255),
    headquarters_address_line1 VARCHAR(255),
    headquarters_address_line2 VARCHAR(255),
    headquarters_address_city VARCHAR(255),
    headquarters_address_region VARCHAR(255),
    headquarters_address_postal_code VARCHAR(255),
    headquarters_address_country VARCHAR(2),
    legal_representative_first_name VARCHAR(100) NOT NULL,
    legal_representative_last_name VARCHAR(100) NOT NULL,
    legal_representative_email VARCHAR(254),
    legal_representative_birthday DATE,
    legal_representative_nationality VARCHAR(2),
    legal_representative_country_of_residence VARCHAR(2),
    legal_representative_address_line1 VARCHAR(255),
    legal_representative_address_line2 VARCHAR(255),
    legal_representative_address_city VARCHAR(255),
    legal_representative_address_region VARCHAR(255),
    legal_representative_address_postal_code VARCHAR(255),
    legal_representative_address_country VARCHAR(2)
);
