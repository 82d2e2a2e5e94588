//! The diesel schema, written by hand and shared by SQLite and PostgreSQL.
//!
//! The DDL of each backend is in `migrations/postgres` and `migrations/sqlite`; the column
//! types here are the ones both agree on (`BigInt` ids, `Text`, `Bool`, `Timestamp` in UTC).
#![allow(missing_docs)]

diesel::table! {
    /// One row per Mangopay user, natural or legal.
    mangopay_users (id) {
        id -> BigInt,
        person_type -> Text,
        app_user_ref -> Nullable<Text>,
        mangopay_id -> Nullable<Text>,
        user_category -> Text,
        terms_and_conditions_accepted -> Bool,
        terms_and_conditions_accepted_at -> Nullable<Timestamp>,
        email -> Text,
        tag -> Nullable<Text>,
        kyc_level -> Nullable<Text>,
        user_status -> Nullable<Text>,
        mangopay_created_at -> Nullable<Timestamp>,
        sync_state -> Text,
        create_idempotency_key -> Nullable<Text>,
        create_idempotency_key_at -> Nullable<Timestamp>,
        sync_attempts -> Integer,
        last_error -> Nullable<Text>,
        last_error_at -> Nullable<Timestamp>,
        api_payload -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        create_sent_at -> Nullable<Timestamp>,
        create_key_spent -> Bool,
        create_key_version -> Nullable<BigInt>,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        row_version -> BigInt,
        dirty -> Bool,
    }
}

diesel::table! {
    /// The details of a natural user (an individual).
    mangopay_natural_users (user_id) {
        user_id -> BigInt,
        first_name -> Text,
        last_name -> Text,
        birthday -> Nullable<Date>,
        nationality -> Nullable<Text>,
        country_of_residence -> Nullable<Text>,
        occupation -> Nullable<Text>,
        income_range -> Nullable<Integer>,
        address_line1 -> Nullable<Text>,
        address_line2 -> Nullable<Text>,
        address_city -> Nullable<Text>,
        address_region -> Nullable<Text>,
        address_postal_code -> Nullable<Text>,
        address_country -> Nullable<Text>,
    }
}

diesel::table! {
    /// The details of a legal user (a company, organisation, partnership or sole trader).
    mangopay_legal_users (user_id) {
        user_id -> BigInt,
        legal_person_type -> Text,
        name -> Text,
        company_number -> Nullable<Text>,
        headquarters_address_line1 -> Nullable<Text>,
        headquarters_address_line2 -> Nullable<Text>,
        headquarters_address_city -> Nullable<Text>,
        headquarters_address_region -> Nullable<Text>,
        headquarters_address_postal_code -> Nullable<Text>,
        headquarters_address_country -> Nullable<Text>,
        legal_representative_first_name -> Text,
        legal_representative_last_name -> Text,
        legal_representative_email -> Nullable<Text>,
        legal_representative_birthday -> Nullable<Date>,
        legal_representative_nationality -> Nullable<Text>,
        legal_representative_country_of_residence -> Nullable<Text>,
        legal_representative_address_line1 -> Nullable<Text>,
        legal_representative_address_line2 -> Nullable<Text>,
        legal_representative_address_city -> Nullable<Text>,
        legal_representative_address_region -> Nullable<Text>,
        legal_representative_address_postal_code -> Nullable<Text>,
        legal_representative_address_country -> Nullable<Text>,
    }
}

diesel::table! {
    /// Objects Mangopay created for an idempotency key their row no longer holds.
    mangopay_orphans (id) {
        id -> BigInt,
        table_name -> Text,
        row_id -> BigInt,
        mangopay_id -> Text,
        idempotency_key -> Text,
        row_mangopay_id -> Nullable<Text>,
        found_at -> Timestamp,
    }
}

diesel::joinable!(mangopay_natural_users -> mangopay_users (user_id));
diesel::joinable!(mangopay_legal_users -> mangopay_users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    mangopay_users,
    mangopay_natural_users,
    mangopay_legal_users
);
