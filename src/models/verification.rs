//! "Is this user verified enough?": django-mangopay's light and regular authentication
//! predicates, the document types each kind of user must have validated, and the required
//! types whose documents must be sent again, brought up to today's API and read from the
//! database alone (no network call).
//!
//! - **Light**: the user's row holds what Mangopay needs of an `OWNER` before any
//!   verification: a natural user's birthday, nationality and country of residence; a legal
//!   user's name, legal person type and legal representative (first and last name, birthday,
//!   nationality, country of residence).
//! - **Regular**: light, plus an address (a natural user's own; a legal user's headquarters),
//!   plus at least one `VALIDATED` document of every required type. Today's API no longer asks
//!   for a natural user's occupation and income range, so they are not required here.
//! - **Required types**: `IDENTITY_PROOF` for a natural user; `IDENTITY_PROOF` and
//!   `REGISTRATION_PROOF` for a sole trader; those and `ARTICLES_OF_ASSOCIATION` for an
//!   organisation, a business or a partnership. Businesses and partnerships also need a
//!   validated UBO declaration ([`MangopayUboDeclaration`](crate::MangopayUboDeclaration))
//!   where django-mangopay asked for a `SHAREHOLDER_DECLARATION`: until one is `VALIDATED`,
//!   `missing` names `ubo_declaration`.
//! - **To send again**: the required types, in that order, with a `REFUSED` (or, today,
//!   `OUT_OF_DATE`) document and no document `VALIDATED` or `VALIDATION_ASKED` and none in
//!   progress (not created at Mangopay yet, or `CREATED`: its pages are being uploaded).

use chrono::NaiveDate;
use diesel::prelude::*;

use super::types::{
    DocumentStatus, DocumentType, KycLevel, LegalPersonType, PersonType, UboDeclarationStatus,
};
use crate::schema::{
    mangopay_documents as documents, mangopay_legal_users as legal,
    mangopay_natural_users as natural, mangopay_ubo_declarations as declarations,
    mangopay_users as users,
};
use crate::{Db, Error};

/// What the database says about a user's verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The user's local id.
    pub user_id: i64,
    /// Natural or legal.
    pub person_type: PersonType,
    /// A legal user's kind.
    pub legal_person_type: Option<LegalPersonType>,
    /// Light authentication: the row holds what Mangopay needs before any verification.
    pub light: bool,
    /// Regular authentication: light, an address, and every required document validated.
    pub regular: bool,
    /// What keeps the user from regular authentication: field names (`birthday`,
    /// `address`, ...), document types (`IDENTITY_PROOF`, ...) and `ubo_declaration`.
    pub missing: Vec<String>,
    /// The document types the user must have validated, in order.
    pub required: Vec<DocumentType>,
    /// The required types with a validated document.
    pub validated: Vec<DocumentType>,
    /// The required types whose documents must be sent again (see the module documentation).
    pub to_send_again: Vec<DocumentType>,
    /// `KYCLevel` as Mangopay last said.
    pub kyc_level: Option<KycLevel>,
    /// The status of the user's latest UBO declaration (`None`: none, or not created at
    /// Mangopay yet).
    pub ubo_declaration: Option<UboDeclarationStatus>,
    /// Whether one of the user's UBO declarations is `VALIDATED`.
    pub ubo_declaration_validated: bool,
}

impl Verification {
    /// Reads the verification of the user `user_id` (local id) from the database.
    pub async fn of(db: &Db, user_id: i64) -> Result<Verification, Error> {
        db.run(move |conn| {
            let (person_type, kyc_level) = users::table
                .find(user_id)
                .select((users::person_type, users::kyc_level))
                .first::<(String, Option<String>)>(conn)
                .optional()?
                .ok_or(Error::NotFound {
                    model: "MangopayUser",
                    id: user_id,
                })?;
            // A document whose create Mangopay refused was never sent for review: it is not
            // "in progress" (nor anything else).
            let docs = documents::table
                .filter(documents::user_id.eq(user_id))
                .filter(
                    documents::status
                        .is_not_null()
                        .or(documents::sync_state.ne("failed")),
                )
                .order(documents::id)
                .select((documents::document_type, documents::status))
                .load::<(String, Option<String>)>(conn)?
                .into_iter()
                .map(|(t, s)| {
                    (
                        DocumentType::from_api(&t),
                        s.as_deref().map(DocumentStatus::from_api),
                    )
                })
                .collect::<Vec<_>>();
            let ubo = declarations::table
                .filter(declarations::user_id.eq(user_id))
                .order(declarations::id)
                .select(declarations::status)
                .load::<Option<String>>(conn)?
                .into_iter()
                .map(|s| s.as_deref().map(UboDeclarationStatus::from_api))
                .collect::<Vec<_>>();
            let person_type = PersonType::from_api(&person_type);
            let (legal_person_type, fields) = if person_type == PersonType::Legal {
                let row = legal::table
                    .find(user_id)
                    .select(LegalFields::as_select())
                    .first::<LegalFields>(conn)
                    .optional()?;
                (
                    row.as_ref()
                        .map(|r| LegalPersonType::from_api(&r.legal_person_type)),
                    row.map(|r| r.check()).unwrap_or_default(),
                )
            } else {
                let row = natural::table
                    .find(user_id)
                    .select(NaturalFields::as_select())
                    .first::<NaturalFields>(conn)
                    .optional()?;
                (None, row.map(|r| r.check()).unwrap_or_default())
            };
            Ok(Verification::from_parts(
                user_id,
                person_type,
                legal_person_type,
                fields,
                &docs,
                &ubo,
                kyc_level.as_deref().map(KycLevel::from_api),
            ))
        })
        .await
    }

    fn from_parts(
        user_id: i64,
        person_type: PersonType,
        legal_person_type: Option<LegalPersonType>,
        fields: FieldCheck,
        docs: &[(DocumentType, Option<DocumentStatus>)],
        ubo: &[Option<UboDeclarationStatus>],
        kyc_level: Option<KycLevel>,
    ) -> Verification {
        let ubo_declaration_validated = ubo
            .iter()
            .any(|s| s.as_ref() == Some(&UboDeclarationStatus::Validated));
        let required = required_document_types(legal_person_type.as_ref());
        let validated: Vec<DocumentType> = required
            .iter()
            .filter(|t| {
                docs.iter()
                    .any(|(d, s)| d == *t && s.as_ref() == Some(&DocumentStatus::Validated))
            })
            .cloned()
            .collect();
        let mut missing: Vec<String> = fields.light_missing.clone();
        missing.extend(fields.regular_missing.iter().cloned());
        missing.extend(
            required
                .iter()
                .filter(|t| !validated.contains(t))
                .map(|t| t.as_str().to_owned()),
        );
        if needs_ubo_declaration(legal_person_type.as_ref()) && !ubo_declaration_validated {
            missing.push("ubo_declaration".into());
        }
        let light = fields.light_missing.is_empty();
        Verification {
            user_id,
            person_type,
            light,
            regular: light && missing.is_empty(),
            missing,
            to_send_again: types_to_send_again(&required, docs),
            required,
            validated,
            legal_person_type,
            kyc_level,
            ubo_declaration: ubo.last().cloned().flatten(),
            ubo_declaration_validated,
        }
    }

    /// Whether Mangopay allows pay-outs to the user as far as the database knows: regular
    /// authentication here, and Mangopay's own `KYCLevel` `REGULAR`.
    pub fn verified_for_pay_outs(&self) -> bool {
        self.regular && self.kyc_level == Some(KycLevel::Regular)
    }
}

/// The document types a user must have validated: see the module documentation.
pub fn required_document_types(legal_person_type: Option<&LegalPersonType>) -> Vec<DocumentType> {
    use DocumentType as T;
    match legal_person_type {
        None => vec![T::IdentityProof],
        Some(LegalPersonType::Soletrader) => vec![T::IdentityProof, T::RegistrationProof],
        Some(_) => vec![
            T::IdentityProof,
            T::RegistrationProof,
            T::ArticlesOfAssociation,
        ],
    }
}

/// Whether a legal user of this kind needs a validated UBO declaration (businesses and
/// partnerships).
pub fn needs_ubo_declaration(legal_person_type: Option<&LegalPersonType>) -> bool {
    matches!(
        legal_person_type,
        Some(LegalPersonType::Business | LegalPersonType::Partnership)
    )
}

/// The types of `required`, in order, whose documents (`docs`: type and status, `None` for a
/// document not created at Mangopay) must be sent again: one was refused (or went out of
/// date), and none is validated, awaiting validation or in progress.
pub fn types_to_send_again(
    required: &[DocumentType],
    docs: &[(DocumentType, Option<DocumentStatus>)],
) -> Vec<DocumentType> {
    use DocumentStatus as S;
    required
        .iter()
        .filter(|t| {
            let of_type = || docs.iter().filter(move |(d, _)| d == *t).map(|(_, s)| s);
            let refused = of_type().any(|s| matches!(s, Some(S::Refused | S::OutOfDate)));
            let settled_or_going = of_type().any(|s| {
                matches!(
                    s,
                    None | Some(S::Validated | S::ValidationAsked | S::Created)
                )
            });
            refused && !settled_or_going
        })
        .cloned()
        .collect()
}

/// Which fields keep a user from light and from regular authentication.
#[derive(Debug, Clone, Default)]
struct FieldCheck {
    light_missing: Vec<String>,
    regular_missing: Vec<String>,
}

fn blank(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

fn push_if(out: &mut Vec<String>, missing: bool, name: &str) {
    if missing {
        out.push(name.to_owned());
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = natural)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, crate::db::MultiBackend))]
struct NaturalFields {
    first_name: String,
    last_name: String,
    birthday: Option<NaiveDate>,
    nationality: Option<String>,
    country_of_residence: Option<String>,
    address_line1: Option<String>,
    address_city: Option<String>,
    address_country: Option<String>,
}

impl NaturalFields {
    fn check(self) -> FieldCheck {
        let mut c = FieldCheck::default();
        let l = &mut c.light_missing;
        push_if(l, self.first_name.trim().is_empty(), "first_name");
        push_if(l, self.last_name.trim().is_empty(), "last_name");
        push_if(l, self.birthday.is_none(), "birthday");
        push_if(l, blank(&self.nationality), "nationality");
        push_if(l, blank(&self.country_of_residence), "country_of_residence");
        let address =
            blank(&self.address_line1) || blank(&self.address_city) || blank(&self.address_country);
        push_if(&mut c.regular_missing, address, "address");
        c
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = legal)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, crate::db::MultiBackend))]
struct LegalFields {
    legal_person_type: String,
    name: String,
    headquarters_address_line1: Option<String>,
    headquarters_address_city: Option<String>,
    headquarters_address_country: Option<String>,
    legal_representative_first_name: String,
    legal_representative_last_name: String,
    legal_representative_birthday: Option<NaiveDate>,
    legal_representative_nationality: Option<String>,
    legal_representative_country_of_residence: Option<String>,
}

impl LegalFields {
    fn check(&self) -> FieldCheck {
        let mut c = FieldCheck::default();
        let l = &mut c.light_missing;
        push_if(l, self.name.trim().is_empty(), "name");
        push_if(
            l,
            self.legal_representative_first_name.trim().is_empty(),
            "legal_representative_first_name",
        );
        push_if(
            l,
            self.legal_representative_last_name.trim().is_empty(),
            "legal_representative_last_name",
        );
        push_if(
            l,
            self.legal_representative_birthday.is_none(),
            "legal_representative_birthday",
        );
        push_if(
            l,
            blank(&self.legal_representative_nationality),
            "legal_representative_nationality",
        );
        push_if(
            l,
            blank(&self.legal_representative_country_of_residence),
            "legal_representative_country_of_residence",
        );
        let address = blank(&self.headquarters_address_line1)
            || blank(&self.headquarters_address_city)
            || blank(&self.headquarters_address_country);
        push_if(&mut c.regular_missing, address, "headquarters_address");
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DocumentStatus as S;
    use DocumentType as T;

    fn again(docs: &[(T, Option<S>)]) -> Vec<T> {
        types_to_send_again(&required_document_types(None), docs)
    }

    #[test]
    fn required_types_per_kind_of_user() {
        assert_eq!(required_document_types(None), [T::IdentityProof]);
        assert_eq!(
            required_document_types(Some(&LegalPersonType::Soletrader)),
            [T::IdentityProof, T::RegistrationProof]
        );
        for kind in [
            LegalPersonType::Business,
            LegalPersonType::Organization,
            LegalPersonType::Partnership,
        ] {
            assert_eq!(
                required_document_types(Some(&kind)),
                [
                    T::IdentityProof,
                    T::RegistrationProof,
                    T::ArticlesOfAssociation
                ]
            );
        }
        assert!(needs_ubo_declaration(Some(&LegalPersonType::Business)));
        assert!(needs_ubo_declaration(Some(&LegalPersonType::Partnership)));
        assert!(!needs_ubo_declaration(Some(&LegalPersonType::Organization)));
        assert!(!needs_ubo_declaration(None));
    }

    #[test]
    fn a_refused_type_is_sent_again_unless_another_is_validated_asked_or_in_progress() {
        let id = T::IdentityProof;
        let just_id = [T::IdentityProof];
        assert!(again(&[]).is_empty(), "nothing sent, nothing to send again");
        assert_eq!(again(&[(id.clone(), Some(S::Refused))]), just_id);
        assert_eq!(
            again(&[
                (id.clone(), Some(S::Refused)),
                (id.clone(), Some(S::Refused))
            ]),
            just_id
        );
        assert_eq!(again(&[(id.clone(), Some(S::OutOfDate))]), just_id);
        for other in [
            None,
            Some(S::Created),
            Some(S::ValidationAsked),
            Some(S::Validated),
        ] {
            assert!(
                again(&[(id.clone(), Some(S::Refused)), (id.clone(), other.clone())]).is_empty(),
                "{other:?} after a refusal"
            );
            assert!(
                again(&[(id.clone(), other.clone()), (id.clone(), Some(S::Refused))]).is_empty(),
                "{other:?} before a refusal"
            );
        }
        // A refusal of another type does not count; unknown statuses neither.
        assert!(again(&[(T::AddressProof, Some(S::Refused))]).is_empty());
        assert!(again(&[(id.clone(), Some(S::Unknown("ON_HOLD".into())))]).is_empty());
    }

    #[test]
    fn the_types_to_send_again_keep_the_required_order() {
        let required = required_document_types(Some(&LegalPersonType::Organization));
        let docs = [
            (T::ArticlesOfAssociation, Some(S::Refused)),
            (T::RegistrationProof, Some(S::Validated)),
            (T::IdentityProof, Some(S::Refused)),
        ];
        assert_eq!(
            types_to_send_again(&required, &docs),
            [T::IdentityProof, T::ArticlesOfAssociation]
        );
    }

    fn natural_ok() -> NaturalFields {
        NaturalFields {
            first_name: "Alex".into(),
            last_name: "Martin".into(),
            birthday: NaiveDate::from_ymd_opt(1990, 5, 1),
            nationality: Some("FR".into()),
            country_of_residence: Some("FR".into()),
            address_line1: Some("1 rue de la Paix".into()),
            address_city: Some("Paris".into()),
            address_country: Some("FR".into()),
        }
    }

    fn verify(
        fields: FieldCheck,
        legal: Option<LegalPersonType>,
        docs: &[(T, Option<S>)],
    ) -> Verification {
        verify_with_ubo(fields, legal, docs, &[])
    }

    fn verify_with_ubo(
        fields: FieldCheck,
        legal: Option<LegalPersonType>,
        docs: &[(T, Option<S>)],
        ubo: &[Option<UboDeclarationStatus>],
    ) -> Verification {
        let person = if legal.is_some() {
            PersonType::Legal
        } else {
            PersonType::Natural
        };
        Verification::from_parts(1, person, legal, fields, docs, ubo, Some(KycLevel::Regular))
    }

    #[test]
    fn light_and_regular_for_a_natural_user() {
        let validated = [(T::IdentityProof, Some(S::Validated))];
        let v = verify(natural_ok().check(), None, &validated);
        assert!(v.light && v.regular && v.missing.is_empty(), "{v:?}");
        assert!(v.verified_for_pay_outs());

        let v = verify(
            natural_ok().check(),
            None,
            &[(T::IdentityProof, Some(S::ValidationAsked))],
        );
        assert!(v.light && !v.regular, "{v:?}");
        assert_eq!(v.missing, ["IDENTITY_PROOF"]);

        let mut no_birthday = natural_ok();
        no_birthday.birthday = None;
        let v = verify(no_birthday.check(), None, &validated);
        assert!(!v.light && !v.regular, "{v:?}");
        assert_eq!(v.missing, ["birthday"]);

        let mut no_address = natural_ok();
        no_address.address_city = Some("  ".into());
        let v = verify(no_address.check(), None, &validated);
        assert!(v.light && !v.regular, "{v:?}");
        assert_eq!(v.missing, ["address"]);

        for (field, blanked) in [
            (
                "nationality",
                NaturalFields {
                    nationality: None,
                    ..natural_ok()
                },
            ),
            (
                "country_of_residence",
                NaturalFields {
                    country_of_residence: Some(String::new()),
                    ..natural_ok()
                },
            ),
            (
                "first_name",
                NaturalFields {
                    first_name: String::new(),
                    ..natural_ok()
                },
            ),
        ] {
            let v = verify(blanked.check(), None, &validated);
            assert!(!v.light && v.missing == [field], "{field}: {v:?}");
        }
    }

    fn legal_ok(kind: &str) -> LegalFields {
        LegalFields {
            legal_person_type: kind.into(),
            name: "Acme".into(),
            headquarters_address_line1: Some("1 Main St".into()),
            headquarters_address_city: Some("Paris".into()),
            headquarters_address_country: Some("FR".into()),
            legal_representative_first_name: "Sam".into(),
            legal_representative_last_name: "Lee".into(),
            legal_representative_birthday: NaiveDate::from_ymd_opt(1980, 1, 2),
            legal_representative_nationality: Some("FR".into()),
            legal_representative_country_of_residence: Some("FR".into()),
        }
    }

    #[test]
    fn light_and_regular_for_legal_users() {
        let all = [
            (T::IdentityProof, Some(S::Validated)),
            (T::RegistrationProof, Some(S::Validated)),
            (T::ArticlesOfAssociation, Some(S::Validated)),
        ];
        let v = verify(
            legal_ok("ORGANIZATION").check(),
            Some(LegalPersonType::Organization),
            &all,
        );
        assert!(v.light && v.regular, "{v:?}");
        let v = verify(
            legal_ok("SOLETRADER").check(),
            Some(LegalPersonType::Soletrader),
            &all[..2],
        );
        assert!(v.regular, "{v:?}");
        let v = verify(
            legal_ok("ORGANIZATION").check(),
            Some(LegalPersonType::Organization),
            &all[..2],
        );
        assert_eq!(v.missing, ["ARTICLES_OF_ASSOCIATION"]);
        // Businesses also need their UBO declaration validated.
        let v = verify(
            legal_ok("BUSINESS").check(),
            Some(LegalPersonType::Business),
            &all,
        );
        assert!(
            v.light && !v.regular && v.missing == ["ubo_declaration"],
            "{v:?}"
        );
        // A declaration refused, then a newer one validated: regular. One in progress after
        // a refusal is not enough.
        use UboDeclarationStatus as U;
        let business = || legal_ok("BUSINESS").check();
        let b = Some(LegalPersonType::Business);
        let v = verify_with_ubo(
            business(),
            b.clone(),
            &all,
            &[Some(U::Refused), Some(U::Validated)],
        );
        assert!(
            v.regular && v.ubo_declaration == Some(U::Validated),
            "{v:?}"
        );
        let v = verify_with_ubo(
            business(),
            b.clone(),
            &all,
            &[Some(U::Refused), Some(U::ValidationAsked), None],
        );
        assert!(!v.regular && v.missing == ["ubo_declaration"], "{v:?}");
        assert_eq!(v.ubo_declaration, None, "the latest is not created yet");
        assert!(!v.ubo_declaration_validated);

        let mut no_hq = legal_ok("ORGANIZATION");
        no_hq.headquarters_address_country = None;
        let v = verify(no_hq.check(), Some(LegalPersonType::Organization), &all);
        assert!(
            v.light && !v.regular && v.missing == ["headquarters_address"],
            "{v:?}"
        );
        let mut no_rep = legal_ok("ORGANIZATION");
        no_rep.legal_representative_birthday = None;
        let v = verify(no_rep.check(), Some(LegalPersonType::Organization), &all);
        assert!(
            !v.light && v.missing == ["legal_representative_birthday"],
            "{v:?}"
        );
    }

    #[test]
    fn pay_outs_also_need_mangopay_s_regular_level() {
        let validated = [(T::IdentityProof, Some(S::Validated))];
        let mut v = verify(natural_ok().check(), None, &validated);
        v.kyc_level = Some(KycLevel::Light);
        assert!(v.regular && !v.verified_for_pay_outs());
    }
}
