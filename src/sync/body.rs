//! Request bodies: a create sends the fields that are set; an update also says which optional
//! fields the application cleared since Mangopay's last answer, in the form the API accepts,
//! or refuses the update with a typed error naming the field when the API has no such form.
//!
//! Mangopay's reference does not say how `PUT` clears a field. The official Node SDK sends
//! `null` for every unset field, so `null` must mean "keep"; this library sends `""` for text
//! (and `null` where the reference lists it as an allowed value), then checks Mangopay's
//! answer: a field still holding a value was not cleared, and the update reports it
//! ([`crate::Error::NotCleared`]) instead of letting the answer silently restore it.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::validate::{FieldErrorKind, ValidationErrors};

/// How an optional field is cleared at Mangopay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clear {
    /// Send `""`.
    EmptyString,
    /// Send `null` (only where the reference lists `null` as an accepted value).
    Null,
    /// Mangopay cannot clear it: refuse the update with [`FieldErrorKind::CannotClear`].
    Refuse(&'static str),
}

/// A field the update clears: the model's field name and its API path (`Address.AddressLine2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleared {
    /// The model's field, such as `occupation` or `address.line2`.
    pub field: String,
    /// Where it is in Mangopay's object, dot-separated.
    pub api_path: String,
}

/// A JSON object, built field by field.
#[derive(Debug, Default)]
pub struct CreateBody(Map<String, Value>);

impl CreateBody {
    /// An empty body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` when `value` is present; absent fields are left out.
    pub fn put<T: Serialize>(&mut self, key: &str, value: Option<T>) -> &mut Self {
        if let Some(v) = value.and_then(|v| serde_json::to_value(v).ok()) {
            self.0.insert(key.to_owned(), v);
        }
        self
    }

    /// The body.
    pub fn finish(self) -> Value {
        Value::Object(self.0)
    }
}

/// An update body: what is set, and what was cleared since `known` (Mangopay's last answer).
#[derive(Debug)]
pub struct UpdateBody<'a> {
    body: Map<String, Value>,
    known: Option<&'a Value>,
    cleared: Vec<Cleared>,
    errors: ValidationErrors,
}

/// Whether Mangopay's object holds a value at this spot: not absent, `null` or `""`, and for
/// an object, some part that holds one.
pub(crate) fn holds_value(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Object(map)) => map.values().any(|v| holds_value(Some(v))),
        Some(_) => true,
    }
}

/// The value at a dot-separated path.
pub(crate) fn at_path<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

impl<'a> UpdateBody<'a> {
    /// A body for an object Mangopay last described as `known`.
    pub fn new(known: Option<&'a Value>) -> Self {
        UpdateBody {
            body: Map::new(),
            known,
            cleared: Vec::new(),
            errors: ValidationErrors::new(),
        }
    }

    fn known_at(&self, path: &str) -> Option<&'a Value> {
        self.known.and_then(|k| at_path(k, path))
    }

    /// Sets a field that is always sent.
    pub fn set<T: Serialize>(&mut self, key: &str, value: T) -> &mut Self {
        if let Ok(v) = serde_json::to_value(value) {
            self.body.insert(key.to_owned(), v);
        }
        self
    }

    /// An optional field: sent when set; when unset and Mangopay holds a value, cleared with
    /// `clear` (or refused).
    pub fn opt<T: Serialize>(
        &mut self,
        key: &str,
        field: &str,
        value: Option<T>,
        clear: Clear,
    ) -> &mut Self {
        match value {
            Some(v) => {
                self.set(key, v);
            }
            None if holds_value(self.known_at(key)) => match clear {
                Clear::EmptyString => self.clear(key, field, Value::String(String::new())),
                Clear::Null => self.clear(key, field, Value::Null),
                Clear::Refuse(why) => self
                    .errors
                    .push(field.to_owned(), FieldErrorKind::CannotClear(why)),
            },
            None => {}
        }
        self
    }

    fn clear(&mut self, key: &str, field: &str, with: Value) {
        self.body.insert(key.to_owned(), with);
        self.cleared.push(Cleared {
            field: field.to_owned(),
            api_path: key.to_owned(),
        });
    }

    /// An optional object whose parts are optional text (an address): set parts are sent,
    /// parts Mangopay holds but the application cleared are sent as `""`; a whole object
    /// cleared is sent with every part `""`. `parts` maps each API part name to the model's
    /// part name and value.
    pub fn object(
        &mut self,
        key: &str,
        field: &str,
        parts: Option<&[(&str, &str, Option<&str>)]>,
        all_parts: &[(&str, &str)],
    ) -> &mut Self {
        let known = self.known_at(key);
        match parts {
            Some(parts) => {
                let mut object = Map::new();
                for (api_part, model_part, value) in parts {
                    match value {
                        Some(v) => {
                            object.insert((*api_part).to_owned(), Value::String((*v).to_owned()));
                        }
                        None if holds_value(known.and_then(|k| k.get(*api_part))) => {
                            object.insert((*api_part).to_owned(), Value::String(String::new()));
                            self.cleared.push(Cleared {
                                field: format!("{field}.{model_part}"),
                                api_path: format!("{key}.{api_part}"),
                            });
                        }
                        None => {}
                    }
                }
                self.body.insert(key.to_owned(), Value::Object(object));
            }
            None if holds_value(known) => {
                let object = all_parts
                    .iter()
                    .map(|(api_part, _)| ((*api_part).to_owned(), Value::String(String::new())))
                    .collect();
                self.body.insert(key.to_owned(), Value::Object(object));
                self.cleared.push(Cleared {
                    field: field.to_owned(),
                    api_path: key.to_owned(),
                });
            }
            None => {}
        }
        self
    }

    /// The body and the cleared fields, or the fields that cannot be cleared.
    pub fn finish(self) -> Result<(Value, Vec<Cleared>), ValidationErrors> {
        if self.errors.is_empty() {
            Ok((Value::Object(self.body), self.cleared))
        } else {
            Err(self.errors)
        }
    }
}

/// The cleared fields Mangopay's answer still holds a value for.
pub(crate) fn not_cleared(answer: &Value, cleared: &[Cleared]) -> Vec<String> {
    cleared
        .iter()
        .filter(|c| holds_value(at_path(answer, &c.api_path)))
        .map(|c| c.field.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unset_fields_that_mangopay_holds_are_cleared_in_the_accepted_form() {
        let known = json!({"Occupation": "Architect", "IncomeRange": 3, "Tag": null,
            "Birthday": 651974400, "Address": {"AddressLine1": "1 Quai", "AddressLine2": "Bat B",
            "City": "Lyon", "Region": null, "PostalCode": "69001", "Country": "FR"}});
        let mut b = UpdateBody::new(Some(&known));
        b.set("FirstName", "Alex")
            .opt("Occupation", "occupation", None::<&str>, Clear::EmptyString)
            .opt("IncomeRange", "income_range", None::<u8>, Clear::Null)
            .opt("Tag", "tag", None::<&str>, Clear::EmptyString)
            .object(
                "Address",
                "address",
                Some(&[
                    ("AddressLine1", "line1", Some("1 Quai")),
                    ("AddressLine2", "line2", None),
                    ("Region", "region", None),
                ]),
                &[],
            );
        let (body, cleared) = b.finish().unwrap();
        assert_eq!(body["Occupation"], "");
        assert_eq!(body["IncomeRange"], Value::Null);
        assert!(
            body.get("Tag").is_none(),
            "Mangopay holds no tag: nothing to clear"
        );
        assert_eq!(body["Address"]["AddressLine2"], "");
        assert!(body["Address"].get("Region").is_none());
        let fields: Vec<_> = cleared.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["occupation", "income_range", "address.line2"]);

        let answer = json!({"Occupation": "Architect", "IncomeRange": null,
            "Address": {"AddressLine2": ""}});
        assert_eq!(not_cleared(&answer, &cleared), ["occupation"]);
    }

    #[test]
    fn a_field_mangopay_cannot_clear_is_refused_by_name() {
        let known = json!({"Birthday": 651974400});
        let mut b = UpdateBody::new(Some(&known));
        b.opt(
            "Birthday",
            "birthday",
            None::<i64>,
            Clear::Refuse("set another date"),
        );
        let errors = b.finish().unwrap_err();
        assert!(matches!(
            errors.get("birthday").unwrap().kind(),
            FieldErrorKind::CannotClear(_)
        ));
    }

    #[test]
    fn a_whole_object_is_cleared_part_by_part() {
        let known = json!({"Address": {"AddressLine1": "x", "City": "y"}});
        let mut b = UpdateBody::new(Some(&known));
        b.object(
            "Address",
            "address",
            None,
            &[("AddressLine1", "line1"), ("City", "city")],
        );
        let (body, cleared) = b.finish().unwrap();
        assert_eq!(body["Address"], json!({"AddressLine1": "", "City": ""}));
        assert_eq!(cleared[0].api_path, "Address");
        assert_eq!(
            not_cleared(
                &json!({"Address": {"AddressLine1": null, "City": ""}}),
                &cleared
            ),
            Vec::<String>::new()
        );
    }
}
