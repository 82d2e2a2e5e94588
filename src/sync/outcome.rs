//! What a create's answer means for the row: the outcome table of the write-ahead protocol,
//! as a pure function of the answer, unit-tested apart from any HTTP or SQL.
//!
//! | what came back | verdict | the row |
//! |---|---|---|
//! | 2xx with the object (direct, or replayed after a 409) | created | record id and fields |
//! | 2xx without an object `Id` | unknown | keep the key; resend (direct) or reconcile (replayed) |
//! | 4xx other than 408/429, 3xx, to the key's first send or replayed as its stored answer | refused | release the key, `failed` |
//! | the same to a resend of the key (a proxy, credentials, a rule checked before the key) | unknown, key spent | keep the key, look it up, reconcile by tag |
//! | 429 direct, a connection never opened, no token, the client's own rate limit | not processed | keep the key, retry |
//! | 429 replayed (the key stored a 429) | not processed, key blocked | release the key, retry |
//! | 5xx, 408, timeout, lost connection, unreadable 2xx | unknown | keep the key, resend it |
//! | 409 whose first answer is a 5xx or cannot be read | unknown, key spent | keep the key, look it up, then reconcile by tag |

use serde_json::Value;

use crate::client::ApiError;

/// What a create's answer says about the object.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Mangopay has the object; here it is.
    Created(Value),
    /// Mangopay refused the request: nothing was created and resending cannot help.
    Refused,
    /// Mangopay did not process the request. `key_blocked`: the key stored that answer, so the
    /// next attempt needs a new key.
    NotProcessed { key_blocked: bool },
    /// Mangopay may have created the object. `spent`: the key's first answer cannot be read
    /// (only listing by tag can tell); otherwise resending the same key is the way to learn.
    Unknown { spent: bool },
}

impl Verdict {
    /// The verdict on an answer that arrived: a created object needs a non-empty `Id`.
    pub(crate) fn of_answer(body: Value, replayed: bool) -> Verdict {
        let has_id = body
            .get("Id")
            .and_then(Value::as_str)
            .is_some_and(|id| !id.is_empty());
        if has_id {
            Verdict::Created(body)
        } else {
            Verdict::Unknown { spent: replayed }
        }
    }

    /// The verdict on a failed call.
    pub(crate) fn of_error(error: &ApiError) -> Verdict {
        let replayed = error.replayed();
        match error {
            ApiError::Mangopay { status, .. } | ApiError::UnexpectedResponse { status, .. } => {
                match *status {
                    429 => Verdict::NotProcessed {
                        key_blocked: replayed,
                    },
                    408 | 500..=599 => Verdict::Unknown { spent: replayed },
                    _ => Verdict::Refused,
                }
            }
            ApiError::ReplayUnavailable { .. } => Verdict::Unknown { spent: true },
            ApiError::Decode { .. } => Verdict::Unknown { spent: false },
            // Never sent, whatever the reason (no token, bad credentials, the client's own
            // limit): the key's fate is untouched, retryable or not.
            _ if error.never_sent() => Verdict::NotProcessed { key_blocked: false },
            ApiError::Transport(_)
            | ApiError::RateLimited { .. }
            | ApiError::Setup(_)
            | ApiError::TokenUnavailable { .. } => Verdict::Unknown { spent: false },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ErrorBody;
    use serde_json::json;

    fn mangopay(status: u16, replayed: bool) -> ApiError {
        ApiError::Mangopay {
            status,
            body: Box::new(ErrorBody::default()),
            replayed,
            retry_after: None,
        }
    }

    #[test]
    fn answers_with_an_id_are_created_and_others_are_unknown() {
        let created = Verdict::of_answer(json!({"Id": "user_m_1"}), false);
        assert!(matches!(created, Verdict::Created(_)));
        assert_eq!(
            Verdict::of_answer(json!({"Id": ""}), false),
            Verdict::Unknown { spent: false }
        );
        assert_eq!(
            Verdict::of_answer(json!({"Status": "CREATED"}), true),
            Verdict::Unknown { spent: true }
        );
    }

    #[test]
    fn the_outcome_table() {
        for status in [400, 401, 403, 404, 409, 422, 307] {
            assert_eq!(
                Verdict::of_error(&mangopay(status, false)),
                Verdict::Refused
            );
            assert_eq!(Verdict::of_error(&mangopay(status, true)), Verdict::Refused);
        }
        assert_eq!(
            Verdict::of_error(&mangopay(429, false)),
            Verdict::NotProcessed { key_blocked: false }
        );
        assert_eq!(
            Verdict::of_error(&mangopay(429, true)),
            Verdict::NotProcessed { key_blocked: true }
        );
        for status in [408, 500, 502, 503, 504] {
            assert_eq!(
                Verdict::of_error(&mangopay(status, false)),
                Verdict::Unknown { spent: false }
            );
            assert_eq!(
                Verdict::of_error(&mangopay(status, true)),
                Verdict::Unknown { spent: true }
            );
        }
        for lookup in [404, 403, 400, 500] {
            let e = ApiError::ReplayUnavailable {
                key: "k".into(),
                source: Box::new(mangopay(lookup, false)),
            };
            assert_eq!(Verdict::of_error(&e), Verdict::Unknown { spent: true });
        }
        let unreadable = ApiError::Decode {
            status: 200,
            message: "x".into(),
        };
        assert_eq!(
            Verdict::of_error(&unreadable),
            Verdict::Unknown { spent: false }
        );
        let limited = ApiError::RateLimited {
            until: chrono::Utc::now(),
        };
        assert_eq!(
            Verdict::of_error(&limited),
            Verdict::NotProcessed { key_blocked: false }
        );
        let no_token = ApiError::TokenUnavailable {
            source: std::sync::Arc::new(mangopay(401, false)),
        };
        assert!(!no_token.is_retryable());
        assert_eq!(
            Verdict::of_error(&no_token),
            Verdict::NotProcessed { key_blocked: false },
            "never sent: the key's fate is untouched even when retrying cannot help"
        );
        assert_eq!(
            Verdict::of_error(&ApiError::UnexpectedResponse {
                status: 502,
                body: "<html>".into()
            }),
            Verdict::Unknown { spent: false }
        );
    }
}
