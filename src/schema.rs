//! The diesel schema, written by hand and shared by SQLite and PostgreSQL.
//!
//! The DDL of each backend is in `migrations/postgres` and `migrations/sqlite`; the column
//! types here are the ones both agree on (`BigInt` ids, `Text`, `Bool`, `Timestamp` in UTC).
//!
//! The sync core reads and writes the sync columns with SQL of its own (`src/sync/store.rs`),
//! so the tables added after `mangopay_users` declare only the ones queries filter on
//! (`mangopay_id`, `sync_state`) and the two an insert sets (`created_at`, `updated_at`);
//! their DDL has all of them.
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

diesel::table! {
    /// Wallets: one owner, one currency.
    mangopay_wallets (id) {
        id -> BigInt,
        owner_id -> BigInt,
        currency -> Text,
        description -> Text,
        tag -> Nullable<Text>,
        balance_amount -> Nullable<BigInt>,
        balance_read_at -> Nullable<Timestamp>,
        funds_type -> Nullable<Text>,
        mangopay_created_at -> Nullable<Timestamp>,
        mangopay_id -> Nullable<Text>,
        sync_state -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Legacy bank accounts (IBAN, GB, US, CA, OTHER) that pay-outs go to.
    mangopay_bank_accounts (id) {
        id -> BigInt,
        user_id -> BigInt,
        account_type -> Text,
        owner_name -> Text,
        owner_address_line1 -> Nullable<Text>,
        owner_address_line2 -> Nullable<Text>,
        owner_address_city -> Nullable<Text>,
        owner_address_region -> Nullable<Text>,
        owner_address_postal_code -> Nullable<Text>,
        owner_address_country -> Nullable<Text>,
        iban -> Nullable<Text>,
        bic -> Nullable<Text>,
        sort_code -> Nullable<Text>,
        account_number -> Nullable<Text>,
        aba -> Nullable<Text>,
        deposit_account_type -> Nullable<Text>,
        branch_code -> Nullable<Text>,
        institution_number -> Nullable<Text>,
        bank_name -> Nullable<Text>,
        country -> Nullable<Text>,
        active -> Bool,
        tag -> Nullable<Text>,
        mangopay_created_at -> Nullable<Timestamp>,
        mangopay_id -> Nullable<Text>,
        sync_state -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Recipients: the beneficiary accounts that replace bank accounts.
    mangopay_recipients (id) {
        id -> BigInt,
        user_id -> BigInt,
        display_name -> Text,
        payout_method_type -> Text,
        recipient_type -> Text,
        currency -> Text,
        country -> Nullable<Text>,
        recipient_scope -> Text,
        individual_first_name -> Nullable<Text>,
        individual_last_name -> Nullable<Text>,
        business_name -> Nullable<Text>,
        holder_address_line1 -> Nullable<Text>,
        holder_address_line2 -> Nullable<Text>,
        holder_address_city -> Nullable<Text>,
        holder_address_region -> Nullable<Text>,
        holder_address_postal_code -> Nullable<Text>,
        holder_address_country -> Nullable<Text>,
        account_details -> Text,
        status -> Nullable<Text>,
        pending_redirect_url -> Nullable<Text>,
        status_checks -> Integer,
        status_checked_at -> Nullable<Timestamp>,
        follow_at -> Nullable<Timestamp>,
        tag -> Nullable<Text>,
        mangopay_created_at -> Nullable<Timestamp>,
        mangopay_id -> Nullable<Text>,
        sync_state -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Transfers between two wallets.
    mangopay_transfers (id) {
        id -> BigInt,
        author_id -> BigInt,
        credited_user_id -> Nullable<BigInt>,
        debited_wallet_id -> BigInt,
        credited_wallet_id -> BigInt,
        currency -> Text,
        debited_amount -> BigInt,
        fees_amount -> BigInt,
        credited_amount -> Nullable<BigInt>,
        status -> Nullable<Text>,
        result_code -> Nullable<Text>,
        result_message -> Nullable<Text>,
        execution_date -> Nullable<Timestamp>,
        tag -> Nullable<Text>,
        mangopay_created_at -> Nullable<Timestamp>,
        mangopay_id -> Nullable<Text>,
        sync_state -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Pay-outs from a wallet to a bank account or a recipient.
    mangopay_pay_outs (id) {
        id -> BigInt,
        author_id -> BigInt,
        debited_wallet_id -> BigInt,
        bank_account_id -> Nullable<BigInt>,
        recipient_id -> Nullable<BigInt>,
        currency -> Text,
        debited_amount -> BigInt,
        fees_amount -> BigInt,
        credited_amount -> Nullable<BigInt>,
        bank_wire_ref -> Nullable<Text>,
        payout_mode_requested -> Text,
        mode_applied -> Nullable<Text>,
        status -> Nullable<Text>,
        result_code -> Nullable<Text>,
        result_message -> Nullable<Text>,
        fallback_reason_code -> Nullable<Text>,
        fallback_reason_message -> Nullable<Text>,
        execution_date -> Nullable<Timestamp>,
        tag -> Nullable<Text>,
        mangopay_created_at -> Nullable<Timestamp>,
        status_checks -> Integer,
        status_checked_at -> Nullable<Timestamp>,
        follow_at -> Nullable<Timestamp>,
        succeeded_hook_at -> Nullable<Timestamp>,
        mangopay_id -> Nullable<Text>,
        sync_state -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// KYC documents: one per document type sent for a user's verification.
    mangopay_documents (id) {
        id -> BigInt,
        user_id -> BigInt,
        document_type -> Text,
        status -> Nullable<Text>,
        refused_reason_type -> Nullable<Text>,
        refused_reason_message -> Nullable<Text>,
        flags -> Nullable<Text>,
        processed_at -> Nullable<Timestamp>,
        tag -> Nullable<Text>,
        mangopay_created_at -> Nullable<Timestamp>,
        validation_asked_at -> Nullable<Timestamp>,
        status_checks -> Integer,
        status_checked_at -> Nullable<Timestamp>,
        mangopay_id -> Nullable<Text>,
        sync_state -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        submission_requested_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// The pages (files) of KYC documents: where each file is and how far its upload went,
    /// never its bytes.
    mangopay_pages (id) {
        id -> BigInt,
        document_id -> BigInt,
        position -> Integer,
        source_kind -> Text,
        source_path -> Text,
        file_format -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        upload_state -> Text,
        upload_key -> Nullable<Text>,
        upload_key_at -> Nullable<Timestamp>,
        upload_attempts -> Integer,
        uploaded_at -> Nullable<Timestamp>,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        last_error_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// UBO declarations: the ultimate beneficial owners of a BUSINESS or PARTNERSHIP user.
    mangopay_ubo_declarations (id) {
        id -> BigInt,
        user_id -> BigInt,
        status -> Nullable<Text>,
        reason -> Nullable<Text>,
        message -> Nullable<Text>,
        processed_at -> Nullable<Timestamp>,
        mangopay_created_at -> Nullable<Timestamp>,
        submission_requested_at -> Nullable<Timestamp>,
        validation_asked_at -> Nullable<Timestamp>,
        status_checks -> Integer,
        status_checked_at -> Nullable<Timestamp>,
        mangopay_id -> Nullable<Text>,
        sync_state -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// The UBOs (beneficial owners) of UBO declarations, with how far their create went.
    mangopay_ubos (id) {
        id -> BigInt,
        declaration_id -> BigInt,
        first_name -> Text,
        last_name -> Text,
        address_line1 -> Nullable<Text>,
        address_line2 -> Nullable<Text>,
        address_city -> Nullable<Text>,
        address_region -> Nullable<Text>,
        address_postal_code -> Nullable<Text>,
        address_country -> Nullable<Text>,
        nationality -> Text,
        birthday -> Date,
        birthplace_city -> Text,
        birthplace_country -> Text,
        is_active -> Bool,
        mangopay_id -> Nullable<Text>,
        mangopay_created_at -> Nullable<Timestamp>,
        create_state -> Text,
        create_key -> Nullable<Text>,
        create_key_at -> Nullable<Timestamp>,
        create_attempts -> Integer,
        dirty -> Bool,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        last_error_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Cards registered through Mangopay's tokenization server: no number, no CVC.
    mangopay_cards (id) {
        id -> BigInt,
        user_id -> BigInt,
        currency -> Nullable<Text>,
        card_type -> Nullable<Text>,
        expiration_date -> Nullable<Text>,
        alias -> Nullable<Text>,
        card_provider -> Nullable<Text>,
        country -> Nullable<Text>,
        product -> Nullable<Text>,
        bank_code -> Nullable<Text>,
        active -> Bool,
        validity -> Nullable<Text>,
        fingerprint -> Nullable<Text>,
        card_holder_name -> Nullable<Text>,
        tag -> Nullable<Text>,
        mangopay_created_at -> Nullable<Timestamp>,
        info_requested_at -> Nullable<Timestamp>,
        mangopay_id -> Nullable<Text>,
        sync_state -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Card registrations: what the tokenization server needs, and the card they made.
    mangopay_card_registrations (id) {
        id -> BigInt,
        user_id -> BigInt,
        currency -> Text,
        card_type -> Text,
        access_key -> Nullable<Text>,
        preregistration_data -> Nullable<Text>,
        card_registration_url -> Nullable<Text>,
        status -> Nullable<Text>,
        result_code -> Nullable<Text>,
        result_message -> Nullable<Text>,
        mangopay_card_id -> Nullable<Text>,
        card_id -> Nullable<BigInt>,
        tag -> Nullable<Text>,
        mangopay_created_at -> Nullable<Timestamp>,
        mangopay_id -> Nullable<Text>,
        sync_state -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Pay-ins into a wallet: direct and web card pay-ins, bank wires. (`status_checked_at`
    /// and `sync_state` are read and written by the sync core's own SQL.)
    mangopay_pay_ins (id) {
        id -> BigInt,
        payment_type -> Text,
        execution_type -> Text,
        author_id -> BigInt,
        credited_wallet_id -> BigInt,
        card_id -> Nullable<BigInt>,
        currency -> Text,
        debited_amount -> BigInt,
        fees_amount -> BigInt,
        credited_amount -> Nullable<BigInt>,
        secure_mode -> Nullable<Text>,
        secure_mode_needed -> Nullable<Bool>,
        statement_descriptor -> Nullable<Text>,
        browser_info -> Nullable<Text>,
        ip_address -> Nullable<Text>,
        return_url -> Nullable<Text>,
        redirect_url -> Nullable<Text>,
        culture -> Nullable<Text>,
        card_type -> Nullable<Text>,
        wire_reference -> Nullable<Text>,
        bank_account -> Nullable<Text>,
        status -> Nullable<Text>,
        result_code -> Nullable<Text>,
        result_message -> Nullable<Text>,
        execution_date -> Nullable<Timestamp>,
        tag -> Nullable<Text>,
        mangopay_created_at -> Nullable<Timestamp>,
        status_checks -> Integer,
        follow_at -> Nullable<Timestamp>,
        mangopay_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Refunds of pay-ins, full or partial.
    mangopay_refunds (id) {
        id -> BigInt,
        pay_in_id -> BigInt,
        author_id -> BigInt,
        currency -> Text,
        debited_amount -> Nullable<BigInt>,
        fees_amount -> Nullable<BigInt>,
        partial -> Bool,
        credited_amount -> Nullable<BigInt>,
        status -> Nullable<Text>,
        result_code -> Nullable<Text>,
        result_message -> Nullable<Text>,
        execution_date -> Nullable<Timestamp>,
        tag -> Nullable<Text>,
        mangopay_created_at -> Nullable<Timestamp>,
        mangopay_id -> Nullable<Text>,
        create_idempotency_key -> Nullable<Text>,
        sync_state -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(mangopay_natural_users -> mangopay_users (user_id));
diesel::joinable!(mangopay_legal_users -> mangopay_users (user_id));
diesel::joinable!(mangopay_wallets -> mangopay_users (owner_id));
diesel::joinable!(mangopay_bank_accounts -> mangopay_users (user_id));
diesel::joinable!(mangopay_recipients -> mangopay_users (user_id));
diesel::joinable!(mangopay_documents -> mangopay_users (user_id));
diesel::joinable!(mangopay_pages -> mangopay_documents (document_id));
diesel::joinable!(mangopay_ubo_declarations -> mangopay_users (user_id));
diesel::joinable!(mangopay_ubos -> mangopay_ubo_declarations (declaration_id));
diesel::joinable!(mangopay_cards -> mangopay_users (user_id));
diesel::joinable!(mangopay_card_registrations -> mangopay_users (user_id));
diesel::joinable!(mangopay_pay_ins -> mangopay_wallets (credited_wallet_id));
diesel::joinable!(mangopay_refunds -> mangopay_pay_ins (pay_in_id));
diesel::allow_tables_to_appear_in_same_query!(
    mangopay_users,
    mangopay_natural_users,
    mangopay_legal_users,
    mangopay_wallets,
    mangopay_bank_accounts,
    mangopay_recipients,
    mangopay_transfers,
    mangopay_pay_outs,
    mangopay_documents,
    mangopay_pages,
    mangopay_ubo_declarations,
    mangopay_ubos,
    mangopay_cards,
    mangopay_card_registrations,
    mangopay_pay_ins,
    mangopay_refunds
);
