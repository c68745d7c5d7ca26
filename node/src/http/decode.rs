//! Turning request bytes into typed input, with the taxonomy's reasons: bounded bodies
//! (`too_large`), write bodies as JSON or the binary codec (`invalid_json`, `invalid_encoding`,
//! `unknown_kind`, `too_many_events`, ...), query strings (`invalid_query`) and ids
//! (`invalid_id`). Never reads state.

use crate::error::ApiError;
use crate::node::Node;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::{header, HeaderMap, StatusCode};
use ledger::codec::{self, CodecError};
use ledger::Operation;

/// Content type of the compact binary request body (`ledger::codec`, kind `Operation`).
pub const BINARY_CONTENT_TYPE: &str = "application/x-ron-ledger";

/// Read a request body of at most `limits.body_bytes_max` bytes: a longer one is 413
/// `too_large`; one the client breaks off or frames wrongly (a malformed chunk) is 400
/// `malformed_request`, not blamed on its size.
pub(crate) async fn read_body(node: &Node, body: Body) -> Result<Bytes, ApiError> {
    let max = node.config.limits.body_bytes_max;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request bodies are limited to {max} bytes"),
        )
    };
    // A declared length over twice the cap is refused before a byte is read (and before an
    // `Expect: 100-continue` client is told to send it), so a client that announces a huge body
    // and sends it slowly holds nothing until the request deadline. Up to twice the cap the body
    // is read to the cap first: an HTTP/1.1 client that is still sending when the node answers
    // and closes sees a reset, not the 413, if what it has left does not fit the socket buffers.
    if axum::body::HttpBody::size_hint(&body).lower() > (max as u64).saturating_mul(2) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, max).await.map_err(|e| {
        let e = e.into_inner();
        if e.downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            too_large()
        } else {
            ApiError::bad_request(
                "malformed_request",
                format!("the request body could not be read: {e}"),
            )
        }
    })
}

fn is_binary(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(BINARY_CONTENT_TYPE))
}

fn codec_error(e: CodecError) -> ApiError {
    match e {
        CodecError::UnsupportedVersion { .. } => {
            ApiError::bad_request("unsupported_version", e.to_string())
        }
        CodecError::Bounds(ledger::BatchError::Empty) => {
            ApiError::bad_request("empty_batch", e.to_string())
        }
        CodecError::Bounds(_) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            e.to_string(),
        ),
        CodecError::WrongKind { .. } => ApiError::bad_request("unknown_kind", e.to_string()),
        // An operation this build does not know (wire drift: a newer client, or garbage).
        CodecError::Malformed(m) if m.contains("expected variant index") => {
            ApiError::bad_request("unknown_kind", format!("unknown operation kind: {m}"))
        }
        other => ApiError::bad_request("invalid_encoding", other.to_string()),
    }
}

/// A JSON value that must be an object: serde's derived structs also accept an array of their
/// fields in order (`[["7","1","2","3",…]]`), a form the API does not define and that names no
/// field, so request bodies read their records through this.
pub(crate) struct JsonObject<T>(pub T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Only<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object with named fields")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Only(std::marker::PhantomData))
            .map(JsonObject)
    }
}

/// A JSON request body that must be an object (see [`JsonObject`]); 400 `invalid_json`
/// otherwise.
pub(crate) fn json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice::<JsonObject<T>>(body)
        .map(|JsonObject(v)| v)
        .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))
}

/// Decode a write body: a JSON array of events, or the binary encoding of an `Operation`.
pub(crate) fn decode_events<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    wrap: fn(Vec<T>) -> Operation,
) -> Result<Operation, ApiError> {
    let op = if is_binary(headers) {
        codec::decode_operation(body).map_err(codec_error)?
    } else {
        let events: Vec<JsonObject<T>> = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
        let events = events.into_iter().map(|JsonObject(e)| e).collect();
        let op = wrap(events);
        op.check_bounds()
            .map_err(|e| codec_error(CodecError::Bounds(e)))?;
        op
    };
    let expected = wrap(Vec::new());
    if std::mem::discriminant(&op) != std::mem::discriminant(&expected) {
        return Err(ApiError::bad_request(
            "wrong_operation",
            "the binary body holds another kind of operation than this endpoint takes",
        ));
    }
    Ok(op)
}

/// The query of an endpoint that takes no parameters: any is 400 `invalid_query`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoQuery {}

/// The query string, or 400 `invalid_query` naming what is wrong with it.
pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

/// The path's `{id}` text; a segment that is not valid percent-encoded UTF-8 (`/v1/accounts/%ff`)
/// is 400 `invalid_id` in the API's JSON error body, not the HTTP library's plain-text answer.
pub(crate) fn path_text(
    p: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    what: &str,
) -> Result<String, ApiError> {
    p.map(|axum::extract::Path(text)| text).map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("{what} must be a decimal u128 (the path is not valid UTF-8)"),
        )
    })
}

/// A decimal u128 id; 400 `invalid_id` if malformed.
pub(crate) fn parse_u128(text: &str, what: &str) -> Result<u128, ApiError> {
    if !ledger::wire::is_canonical_decimal(text) {
        return Err(ApiError::bad_request(
            "invalid_id",
            format!("{what} must be a decimal u128 (digits, no leading zeros)"),
        ));
    }
    text.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{what} is out of range")))
}

/// An optional decimal u64 query parameter; 400 `invalid_query` if present and malformed.
pub(crate) fn parse_u64(text: Option<&str>, what: &str) -> Result<Option<u64>, ApiError> {
    match text {
        None => Ok(None),
        Some(t) if ledger::wire::is_canonical_decimal(t) => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request("invalid_query", format!("{what} is out of range"))),
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            format!("{what} must be a decimal u64 (digits, no leading zeros)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::Account;

    #[test]
    fn unknown_record_and_operation_kinds_are_unknown_kind() {
        let op = Operation::CreateAccounts(vec![Account {
            id: 1,
            ledger: 1,
            code: 1,
            ..Default::default()
        }]);
        let good = codec::encode(codec::Kind::Operation, &op);
        assert!(codec::decode_operation(&good).is_ok());
        let mut other_kind = good.clone();
        other_kind[3] = codec::Kind::RaftMeta as u8;
        let mut other_op = good.clone();
        other_op[4] = 9;
        for bytes in [other_kind, other_op] {
            let e = codec_error(codec::decode_operation(&bytes).unwrap_err());
            assert_eq!(e.reason, "unknown_kind", "{}", e.message);
            assert_eq!(e.status, 400);
        }
        let mut truncated = good;
        truncated.truncate(8);
        let e = codec_error(codec::decode_operation(&truncated).unwrap_err());
        assert_eq!(e.reason, "invalid_encoding", "{}", e.message);
    }
}
