-- Mangopay users: one row per user, whatever its kind, so that wallets, bank accounts and KYC
-- documents can reference "a user"; the natural and legal details live in their own tables.
-- SQLite variant: see ../postgres for the same schema with PostgreSQL types.
CREATE TABLE mangopay_users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    person_type TEXT NOT NULL CHECK (person_type IN ('NATURAL', 'LEGAL')),
    app_user_ref TEXT,
    mangopay_id TEXT UNIQUE,
    user_category TEXT NOT NULL,
    terms_and_conditions_accepted BOOLEAN NOT NULL DEFAULT 0,
    terms_and_conditions_accepted_at TIMESTAMP,
    email TEXT NOT NULL,
    tag TEXT,
    kyc_level TEXT,
    user_status TEXT,
    mangopay_created_at TIMESTAMP,
    sync_state TEXT NOT NULL DEFAULT 'new'
        CHECK (sync_state IN ('new', 'pending', 'synced', 'failed')),
    create_idempotency_key TEXT UNIQUE,
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
    user_id INTEGER PRIMARY KEY REFERENCES mangopay_users (id) ON DELETE CASCADE,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    birthday DATE,
    nationality TEXT,
    country_of_residence TEXT,
    occupation TEXT,
    income_range INTEGER,
    address_line1 TEXT,
    address_line2 TEXT,
    address_city TEXT,
    address_region TEXT,
    address_postal_code TEXT,
    address_country TEXT
);

CREATE TABLE mangopay_legal_users (
    user_id INTEGER PRIMARY KEY REFERENCES mangopay_users (id) ON DELETE CASCADE,
    legal_person_type TEXT NOT NULL,
    name TEXT NOT NULL,
    company_number TEXT,
    headquarters_address_line1 TEXT,
    headquarters_address_line2 TEXT,
    headquarters_address_city TEXT,
    headquarters_address_region TEXT,
    headquarters_address_postal_code TEXT,
    headquarters_address_country TEXT,
    legal_representative_first_name TEXT NOT NULL,
    legal_representative_last_name TEXT NOT NULL,
    legal_representative_email TEXT,
    legal_representative_birthday DATE,
    legal_representative_nationality TEXT,
    legal_representative_country_of_residence TEXT,
    legal_representative_address_line1 TEXT,
    legal_representative_address_line2 TEXT,
    legal_representative_address_city TEXT,
    legal_representative_address_region TEXT,
    legal_representative_address_postal_code TEXT,
    legal_representative_address_country TEXT
);
