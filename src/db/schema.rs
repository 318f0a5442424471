// Kept by hand for both backends: only BigInt, Text, Binary and Bool, so the same
// definitions hold on SQLite and PostgreSQL (see migrations/<backend>/).

diesel::table! {
    users (id) {
        id -> BigInt,
        login_uid -> Text,
        login_name -> Text,
        login_key -> Text,
        user_name -> Text,
        email -> Text,
        email_key -> Text,
        mobile -> Text,
        country_code -> Text,
        org_id -> BigInt,
        org_name -> Text,
        domain_id -> BigInt,
        password_hash -> Nullable<Text>,
        profile -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    challenges (id) {
        id -> Text,
        reference -> Text,
        subject -> Text,
        purpose -> Text,
        user_id -> Nullable<BigInt>,
        org_id -> BigInt,
        channels -> Text,
        destination_masked -> Text,
        device_id -> Nullable<Text>,
        code_hash -> Binary,
        created_at -> BigInt,
        expires_at -> BigInt,
        attempts -> BigInt,
        max_attempts -> BigInt,
        consumed_at -> Nullable<BigInt>,
        superseded_at -> Nullable<BigInt>,
        numeric_id -> Nullable<BigInt>,
        change_request_id -> Nullable<Text>,
    }
}

diesel::table! {
    send_limits (destination_key) {
        destination_key -> Text,
        last_sent_at -> BigInt,
        recent_sends -> Text,
        sends_window_ms -> BigInt,
        sends_max -> BigInt,
    }
}

diesel::table! {
    upstream_keys (user_id) {
        user_id -> BigInt,
        sealed -> Binary,
        updated_at -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        user_id -> BigInt,
        name -> Text,
        key_hash -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        user_id -> BigInt,
        device_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        last_seen_at -> BigInt,
        idle_timeout_ms -> BigInt,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        challenge_id -> Nullable<Text>,
        channel -> Text,
        destination -> Text,
        destination_masked -> Text,
        payload -> Nullable<Binary>,
        state -> Text,
        attempts -> BigInt,
        next_attempt_at -> BigInt,
        lease_until -> Nullable<BigInt>,
        claimed_by -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        provider -> Nullable<Text>,
        provider_ref -> Nullable<Text>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        at -> BigInt,
        event -> Text,
        outcome -> Text,
        user_id -> Nullable<BigInt>,
        transaction_id -> Nullable<Text>,
        destination_masked -> Nullable<Text>,
        channel -> Nullable<Text>,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    audit_destinations (destination_key, at, event_id) {
        destination_key -> Text,
        at -> BigInt,
        event_id -> Text,
        transaction_id -> Nullable<Text>,
    }
}

diesel::table! {
    provider_status (provider) {
        provider -> Text,
        last_success_at -> Nullable<BigInt>,
        last_failure_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        failures -> BigInt,
        cooling_until -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    twofactor_configs (id) {
        id -> BigInt,
        name -> Text,
        code_length -> BigInt,
        expiry_seconds -> BigInt,
        max_attempts -> BigInt,
        max_sms_count -> BigInt,
        max_sms_interval_seconds -> BigInt,
        return_code -> Bool,
        sms_template -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    capillary_brands (brand_key) {
        brand_key -> Text,
        name -> Text,
        org_id -> BigInt,
        otp_max_count -> Nullable<BigInt>,
        otp_timeout_minutes -> Nullable<BigInt>,
        max_otp_retries -> BigInt,
        otp_length -> BigInt,
        otp_validity_seconds -> BigInt,
        session_validity_seconds -> BigInt,
        token_validity_seconds -> BigInt,
        key_validity_seconds -> BigInt,
        channels -> Text,
        sms_template -> Nullable<Text>,
        hash_key -> Nullable<Text>,
        hash_window_seconds -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    capillary_sessions (id) {
        id -> Text,
        brand_key -> Text,
        web -> Bool,
        identifier_type -> Text,
        identifier_value -> Text,
        device_id -> Nullable<Text>,
        user_id -> Nullable<BigInt>,
        created_at -> BigInt,
        expires_at -> BigInt,
        validated_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(challenges -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(upstream_keys -> users (user_id));
diesel::joinable!(api_keys -> users (user_id));

diesel::table! {
    login_failures (id) {
        id -> BigInt,
        key -> Text,
        at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    users,
    upstream_keys,
    api_keys,
    challenges,
    send_limits,
    sessions,
    outbox,
    audit_events,
    audit_destinations,
    provider_status,
    twofactor_configs,
    capillary_brands,
    capillary_sessions,
    login_failures,
);
