//! `ApiJson<T>`: the request body extractor.
//!
//! Requires `application/json`, enforces the body limit, and matches property names
//! case-insensitively against the target struct's fields (the documented .NET-style
//! clients send `FinancialInstrumentId`, `metaData`, …). Map keys such as metadata
//! keys are left exactly as sent. Unknown fields are ignored.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use baton_domain::text::has_nul;
use baton_domain::{Problem, ProblemKind};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use serde_json::{Map, Value};

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

fn payload_too_large() -> Problem {
    Problem::new(ProblemKind::PayloadTooLarge, "PAYLOAD_TOO_LARGE")
        .message("The request body is larger than {limit} bytes.")
}

/// Reads the body as bytes, mapping an over-limit body to 413.
pub async fn body_bytes(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    match axum::body::to_bytes(request.into_body(), limit).await {
        Ok(b) => Ok(b),
        Err(_) => Err(payload_too_large().detail("limit", limit.to_string()).into()),
    }
}

fn is_json(request: &Request) -> bool {
    let Some(ct) = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/json") || (mime.len() > 5 && mime.to_ascii_lowercase().ends_with("+json"))
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(&request) {
            return Err(Problem::new(ProblemKind::UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
                .message("Request bodies must be JSON (Content-Type: application/json).")
                .into());
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::problem(payload_too_large())
            } else {
                ApiError::problem(Problem::bad_request("INVALID_REQUEST_BODY"))
            }
        })?;
        parse_body(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body into `T`, case-insensitively on struct field names.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        Problem::bad_request("INVALID_JSON")
            .message("The request body is not valid JSON (line {line}, column {column}).")
            .detail("line", e.line().to_string())
            .detail("column", e.column().to_string())
    })?;
    refuse_controls(&value)?;
    from_value(value)
}

/// `400 CONTROL_CHARACTER_NOT_ALLOWED` for a body with a NUL in any string or property
/// name (`baton_domain::text`), with the field it is in. Checked before anything reads
/// the body, so such input changes nothing and is refused alike on every backend.
pub fn refuse_controls(value: &Value) -> Result<(), ApiError> {
    match control_in(value, "") {
        None => Ok(()),
        Some(field) => Err(control_character(&field).into()),
    }
}

/// The problem of a refused control character in `field` (empty for the whole body).
pub fn control_character(field: &str) -> Problem {
    Problem::invalid_field(
        "CONTROL_CHARACTER_NOT_ALLOWED",
        field,
        "{field} contains a control character (NUL), which is not accepted.",
    )
}

/// The path of the first string (or property name) holding a NUL.
fn control_in(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(s) => has_nul(s).then(|| path.to_string()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| control_in(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, v)| {
            if has_nul(key) {
                // The name itself is not echoed: the field is the object holding it.
                return Some(path.to_string());
            }
            let field = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            control_in(v, &field)
        }),
        _ => None,
    }
}

/// Deserialises `T` from a JSON value, case-insensitively on struct field names.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(CaseInsensitive(value)).map_err(|e| {
        let field = e.path().to_string();
        let reason = e.inner().to_string();
        ApiError::problem(
            Problem::bad_request("INVALID_REQUEST_BODY")
                .message("{field}: {reason}")
                .detail("field", if field == "." { String::new() } else { field })
                .detail("reason", reason),
        )
    })
}

/// A JSON value whose objects match struct fields regardless of case.
struct CaseInsensitive(Value);

macro_rules! forward_to_value {
    ($($method:ident),*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(visitor)
        })*
    };
}

impl<'de> Deserializer<'de> for CaseInsensitive {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Seq(items.into_iter())),
            Value::Object(map) => visitor.visit_map(Fields::new(map, &[])),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Fields::new(map, fields)),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Seq(items.into_iter())),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Fields::new(map, &[])),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    forward_to_value!(
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_unit,
        deserialize_identifier,
        deserialize_ignored_any
    );
}

struct Seq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Seq {
    type Error = serde_json::Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Self::Error> {
        self.0.next().map(|v| seed.deserialize(CaseInsensitive(v))).transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// Object entries, with each key replaced by the struct field it matches ignoring case.
struct Fields {
    entries: serde_json::map::IntoIter,
    fields: &'static [&'static str],
    pending: Option<Value>,
}

impl Fields {
    fn new(map: Map<String, Value>, fields: &'static [&'static str]) -> Self {
        Self { entries: map.into_iter(), fields, pending: None }
    }
}

impl<'de> MapAccess<'de> for Fields {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        self.pending = Some(value);
        let key = match self.fields.iter().find(|f| f.eq_ignore_ascii_case(&key)) {
            Some(field) => (*field).to_string(),
            None => key,
        };
        seed.deserialize(IntoDeserializer::<serde_json::Error>::into_deserializer(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        let value = self.pending.take().ok_or_else(|| de::Error::custom("value requested before key"))?;
        seed.deserialize(CaseInsensitive(value))
    }
}

/// An optional JSON body: `None` when the request has no body at all.
pub struct OptionalJson<T>(pub Option<T>);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let declared_empty = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0");
        let no_body = declared_empty
            || (request.headers().get(header::CONTENT_TYPE).is_none()
                && request.headers().get(header::TRANSFER_ENCODING).is_none()
                && request.headers().get(header::CONTENT_LENGTH).is_none());
        if no_body {
            return Ok(OptionalJson(None));
        }
        ApiJson::<T>::from_request(request, state).await.map(|ApiJson(v)| OptionalJson(Some(v)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Inner {
        financial_instrument_id: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Outer {
        order_ref: String,
        #[serde(alias = "metaData")]
        metadata: Option<BTreeMap<String, String>>,
        instructions: Vec<Inner>,
        count: Option<u32>,
    }

    #[test]
    fn field_names_match_ignoring_case_but_map_keys_are_kept() {
        let body = br#"{"OrderRef":"R1","METADATA":{"SomeKey":"v"},"instructions":[{"FinancialInstrumentId":"fi"}],"unknown":1}"#;
        let o: Outer = parse_body(body).map_err(|e| format!("{e:?}")).unwrap();
        assert_eq!(o.order_ref, "R1");
        assert_eq!(o.metadata.unwrap().get("SomeKey").map(String::as_str), Some("v"));
        assert_eq!(o.instructions[0].financial_instrument_id.as_deref(), Some("fi"));
        assert_eq!(o.count, None);
    }

    #[test]
    fn aliases_match_too() {
        let o: Outer = parse_body(br#"{"orderRef":"R","metaData":{"a":"b"},"instructions":[]}"#).unwrap();
        assert!(o.metadata.is_some());
    }

    #[test]
    fn wrong_types_name_the_field() {
        let Err(ApiError::Rejected(p)) = parse_body::<Outer>(br#"{"orderRef":"R","instructions":[],"count":"x"}"#)
        else {
            panic!("expected a rejection")
        };
        assert_eq!(p.0[0].code, "INVALID_REQUEST_BODY");
        assert!(p.0[0].details.iter().any(|(k, v)| k == "field" && v == "count"));
        let Err(ApiError::Rejected(p)) = parse_body::<Outer>(b"{not json") else { panic!() };
        assert_eq!(p.0[0].code, "INVALID_JSON");
    }
}
