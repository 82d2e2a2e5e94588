//! The marker every object this library creates carries in its `Tag`: `dm:{row id}:{key}`,
//! after the application's own tag. It identifies the row and the create attempt (the
//! idempotency key is unique), so reconciliation can find the object by listing the resource,
//! also after Mangopay forgot the key (24 hours), and also when several databases share one
//! Mangopay account (row ids repeat across databases; keys do not).
//!
//! Reading an answer back strips the marker, so the application's `tag` field only ever holds
//! what the application set.

use std::fmt;

/// Mangopay accepts a `Tag` of up to 255 characters.
pub const MAX_TAG_LEN: usize = 255;

/// The longest marker: `" dm:"`, a 19-digit id, `":"` and a 36-character key.
const MAX_MARKER_LEN: usize = 4 + 19 + 1 + 36;

/// The longest tag an application may set: what the marker leaves of Mangopay's 255.
pub const MAX_APP_TAG_LEN: usize = MAX_TAG_LEN - MAX_MARKER_LEN;

/// The row and create attempt an object belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    /// The local id of the row.
    pub row: i64,
    /// The idempotency key of the create that made the object.
    pub key: String,
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dm:{}:{}", self.row, self.key)
    }
}

impl Marker {
    fn parse(token: &str) -> Option<Marker> {
        let rest = token.strip_prefix("dm:")?;
        let (row, key) = rest.split_once(':')?;
        let row_ok = !row.is_empty() && row.len() <= 19 && row.bytes().all(|b| b.is_ascii_digit());
        let key_ok = (16..=36).contains(&key.len())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !(row_ok && key_ok) {
            return None;
        }
        Some(Marker {
            row: row.parse().ok()?,
            key: key.to_owned(),
        })
    }
}

/// The `Tag` to send: the application's tag, then the marker of `key` for row `row`.
pub(crate) fn compose(app_tag: Option<&str>, row: i64, key: Option<&str>) -> Option<String> {
    let marker = key.map(|key| {
        Marker {
            row,
            key: key.to_owned(),
        }
        .to_string()
    });
    match (app_tag.filter(|t| !t.is_empty()), marker) {
        (Some(app), Some(marker)) => Some(format!("{app} {marker}")),
        (None, Some(marker)) => Some(marker),
        (Some(app), None) => Some(app.to_owned()),
        (None, None) => None,
    }
}

/// A `Tag` as Mangopay holds it, split into the application's part and the marker.
pub(crate) fn split(tag: &str) -> (Option<String>, Option<Marker>) {
    let (head, last) = match tag.rsplit_once(' ') {
        Some((head, last)) => (head, last),
        None => ("", tag),
    };
    match Marker::parse(last) {
        Some(marker) => {
            let app = head.trim_end();
            ((!app.is_empty()).then(|| app.to_owned()), Some(marker))
        }
        None => ((!tag.is_empty()).then(|| tag.to_owned()), None),
    }
}

/// Whether `app_tag` would be mistaken for one carrying a marker.
pub(crate) fn looks_marked(app_tag: &str) -> bool {
    split(app_tag).1.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "7f1c2a9e-0b7d-4c55-9a5e-2d6f3e1b8c40";

    #[test]
    fn markers_round_trip_with_and_without_an_application_tag() {
        let tagged = compose(Some("VIP customer"), 42, Some(KEY)).unwrap();
        assert_eq!(tagged, format!("VIP customer dm:42:{KEY}"));
        let (app, marker) = split(&tagged);
        assert_eq!(app.as_deref(), Some("VIP customer"));
        assert_eq!(
            marker,
            Some(Marker {
                row: 42,
                key: KEY.into()
            })
        );

        let bare = compose(None, 7, Some(KEY)).unwrap();
        assert_eq!(
            split(&bare),
            (
                None,
                Some(Marker {
                    row: 7,
                    key: KEY.into()
                })
            )
        );
        assert_eq!(compose(Some("x"), 7, None).as_deref(), Some("x"));
        assert_eq!(compose(Some(""), 7, None), None);
        assert_eq!(split("plain tag"), (Some("plain tag".into()), None));
        assert_eq!(split(""), (None, None));
    }

    #[test]
    fn only_well_formed_markers_are_recognised() {
        for not_a_marker in [
            "dm:",
            "dm:42",
            "dm::0123456789abcdef",
            "dm:4x2:0123456789abcdef",
            "dm:42:short",
            "dm:42:has_underscores_0123",
            "xdm:42:0123456789abcdef",
        ] {
            assert_eq!(split(not_a_marker).1, None, "{not_a_marker}");
        }
        assert!(looks_marked("note dm:1:0123456789abcdef"));
        assert!(!looks_marked("note about dm:s"));
    }

    #[test]
    fn the_longest_marked_tag_fits_mangopays_limit() {
        let app = "a".repeat(MAX_APP_TAG_LEN);
        let tag = compose(Some(&app), i64::MAX, Some(&"k".repeat(36))).unwrap();
        assert_eq!(tag.chars().count(), MAX_TAG_LEN);
    }
}
