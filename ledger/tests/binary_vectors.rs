//! The binary request body (`Content-Type: application/x-ron-ledger`) as `docs/API.md` specifies
//! it byte for byte: the two published vectors decode to the documented values and re-encode to
//! the same bytes, every documented refusal gives the documented reason, and the page carries the
//! vectors exactly as this file does.

use ledger::codec::{self, CodecError, Kind};
use ledger::wire::hex;
use ledger::{Account, AccountFlags, BatchError, Operation, Transfer, TransferFlags};

/// Vector (a): `POST /v1/accounts`, one account.
const ACCOUNT_VECTOR: &str = "524c01020001fe100f0e0d0c0b0a09080706050403020100000000fd8877665544332211fcefbeaddefb3412070a0200";

/// Vector (b): `POST /v1/transfers`, one pending transfer.
const TRANSFER_VECTOR: &str = "524c01020101fe201f1e1d1c1b1a191817161514131211fe100f0e0d0c0b0a090807060504030201fbfb00fc40420f00002afd0807060504030201fc70110100fb100e07140200";

/// Vector (a) as the JSON body it is equivalent to.
const ACCOUNT_JSON: &str = r#"[{"id":"1339673755198158349044581307228491536","user_data_128":"1234605616436508552","user_data_64":"3735928559","user_data_32":4660,"ledger":7,"code":10,"flags":["debits_must_not_exceed_credits"]}]"#;

/// Vector (b) as the JSON body it is equivalent to.
const TRANSFER_JSON: &str = r#"[{"id":"22690724228668807036942595891182575392","debit_account_id":"1339673755198158349044581307228491536","credit_account_id":"251","amount":"1000000","user_data_128":"42","user_data_64":"72623859790382856","user_data_32":70000,"timeout":3600,"ledger":7,"code":20,"flags":["pending"]}]"#;

/// Offsets in vector (a), from the table under it in `docs/API.md`.
const VARIANT_AT: usize = 4;
const COUNT_AT: usize = 5;
const ID_AT: usize = 6;
const USER_DATA_64_AT: usize = 36;
const LEDGER_AT: usize = 44;
const CODE_AT: usize = 45;

fn bytes_of(vector: &str) -> Vec<u8> {
    hex::decode(vector).expect("vector is lower-case hex")
}

/// Vector (a) with `remove` bytes at `at` replaced by `insert`.
fn splice(at: usize, remove: usize, insert: &[u8]) -> Vec<u8> {
    let mut bytes = bytes_of(ACCOUNT_VECTOR);
    bytes.splice(at..at + remove, insert.iter().copied());
    bytes
}

fn documented_account() -> Account {
    Account {
        id: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
        debits_pending: 0,
        debits_posted: 0,
        credits_pending: 0,
        credits_posted: 0,
        user_data_128: 0x1122_3344_5566_7788,
        user_data_64: 0xdead_beef,
        user_data_32: 0x1234,
        ledger: 7,
        code: 10,
        flags: AccountFlags(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
        timestamp: 0,
    }
}

fn documented_transfer() -> Transfer {
    Transfer {
        id: 0x1112_1314_1516_1718_191a_1b1c_1d1e_1f20,
        debit_account_id: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
        credit_account_id: 251,
        amount: 1_000_000,
        pending_id: 0,
        user_data_128: 42,
        user_data_64: 0x0102_0304_0506_0708,
        user_data_32: 70_000,
        timeout: 3_600,
        ledger: 7,
        code: 20,
        flags: TransferFlags(TransferFlags::PENDING),
        timestamp: 0,
    }
}

/// The reason the node answers a codec error with (`codec_error` in `node/src/http/decode.rs`),
/// restated so that the refusal table below reads like the one in `docs/API.md`.
fn reason(e: &CodecError) -> &'static str {
    match e {
        CodecError::BadHeader => "invalid_encoding",
        CodecError::UnsupportedVersion { .. } => "unsupported_version",
        CodecError::WrongKind { .. } => "unknown_kind",
        CodecError::Malformed(m) if m.contains("expected variant index") => "unknown_kind",
        CodecError::Malformed(_) => "invalid_encoding",
        CodecError::Bounds(BatchError::Empty) => "empty_batch",
        CodecError::Bounds(_) => "too_many_events",
    }
}

/// Every field of vector (a) decodes to the value its table states.
#[test]
fn the_account_vector_decodes_to_the_documented_account() {
    let op = codec::decode_operation(&bytes_of(ACCOUNT_VECTOR)).expect("vector (a) decodes");
    let Operation::CreateAccounts(accounts) = &op else {
        panic!("vector (a) is not CreateAccounts: {op:?}");
    };
    assert_eq!(accounts.len(), 1);
    let a = &accounts[0];
    assert_eq!(a.id, 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
    assert_eq!(a.debits_pending, 0);
    assert_eq!(a.debits_posted, 0);
    assert_eq!(a.credits_pending, 0);
    assert_eq!(a.credits_posted, 0);
    assert_eq!(a.user_data_128, 0x1122_3344_5566_7788);
    assert_eq!(a.user_data_64, 0xdead_beef);
    assert_eq!(a.user_data_32, 4_660);
    assert_eq!(a.ledger, 7);
    assert_eq!(a.code, 10);
    assert_eq!(a.flags.0, 0x0002);
    assert!(a.flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS));
    assert_eq!(a.timestamp, 0);
    assert_eq!(op, Operation::CreateAccounts(vec![documented_account()]));
}

/// Every field of vector (b) decodes to the value its table states.
#[test]
fn the_transfer_vector_decodes_to_the_documented_transfer() {
    let op = codec::decode_operation(&bytes_of(TRANSFER_VECTOR)).expect("vector (b) decodes");
    let Operation::CreateTransfers(transfers) = &op else {
        panic!("vector (b) is not CreateTransfers: {op:?}");
    };
    assert_eq!(transfers.len(), 1);
    let t = &transfers[0];
    assert_eq!(t.id, 0x1112_1314_1516_1718_191a_1b1c_1d1e_1f20);
    assert_eq!(
        t.debit_account_id,
        0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10
    );
    assert_eq!(t.credit_account_id, 251);
    assert_eq!(t.amount, 1_000_000);
    assert_eq!(t.pending_id, 0);
    assert_eq!(t.user_data_128, 42);
    assert_eq!(t.user_data_64, 0x0102_0304_0506_0708);
    assert_eq!(t.user_data_32, 70_000);
    assert_eq!(t.timeout, 3_600);
    assert_eq!(t.ledger, 7);
    assert_eq!(t.code, 20);
    assert_eq!(t.flags.0, 0x0002);
    assert!(t.flags.has(TransferFlags::PENDING));
    assert_eq!(t.timestamp, 0);
    assert_eq!(op, Operation::CreateTransfers(vec![documented_transfer()]));
}

/// The encoder writes exactly the published bytes: the vectors are what the SDK sends.
#[test]
fn the_documented_values_encode_to_the_vectors() {
    let accounts = Operation::CreateAccounts(vec![documented_account()]);
    let transfers = Operation::CreateTransfers(vec![documented_transfer()]);
    assert_eq!(
        hex::encode(&codec::encode(Kind::Operation, &accounts)),
        ACCOUNT_VECTOR
    );
    assert_eq!(
        hex::encode(&codec::encode(Kind::Operation, &transfers)),
        TRANSFER_VECTOR
    );
}

/// A vector with one byte more or one byte less is refused as malformed, which the node answers
/// with `invalid_encoding`: the decoder neither ignores trailing bytes nor pads a short body.
#[test]
fn one_byte_more_or_less_is_refused() {
    for (name, vector) in [("a", ACCOUNT_VECTOR), ("b", TRANSFER_VECTOR)] {
        let bytes = bytes_of(vector);
        let mut longer = bytes.clone();
        longer.push(0);
        let shorter = &bytes[..bytes.len() - 1];
        for (what, body) in [
            ("a trailing byte", longer.as_slice()),
            ("one byte cut", shorter),
        ] {
            match codec::decode_operation(body) {
                Err(e @ CodecError::Malformed(_)) => {
                    assert_eq!(
                        reason(&e),
                        "invalid_encoding",
                        "vector ({name}), {what}: {e}"
                    );
                }
                other => panic!("vector ({name}) with {what}: {other:?}"),
            }
        }
    }
}

/// Each row of the refusal table in `docs/API.md`, built from vector (a), gets its reason.
#[test]
fn every_documented_refusal_gives_its_reason() {
    let vector = bytes_of(ACCOUNT_VECTOR);
    let record = &vector[ID_AT..];
    let many = |count: usize, count_varint: &[u8]| {
        let mut bytes = vector[..COUNT_AT].to_vec();
        bytes.extend_from_slice(count_varint);
        for _ in 0..count {
            bytes.extend_from_slice(record);
        }
        bytes
    };
    let cases = [
        ("empty body", Vec::new(), "invalid_encoding"),
        ("three bytes", vector[..3].to_vec(), "invalid_encoding"),
        ("wrong magic", splice(0, 1, b"r"), "invalid_encoding"),
        ("version 0", splice(2, 1, &[0]), "unsupported_version"),
        ("version 2", splice(2, 1, &[2]), "unsupported_version"),
        ("kind 1", splice(3, 1, &[1]), "unknown_kind"),
        ("header only", vector[..4].to_vec(), "invalid_encoding"),
        ("variant 2", splice(VARIANT_AT, 1, &[2]), "unknown_kind"),
        (
            "variant 300",
            splice(VARIANT_AT, 1, &[0xfb, 0x2c, 0x01]),
            "unknown_kind",
        ),
        (
            "count 2, one record",
            splice(COUNT_AT, 1, &[2]),
            "invalid_encoding",
        ),
        ("tag ff", splice(ID_AT, 1, &[0xff]), "invalid_encoding"),
        (
            "fe in a u64",
            splice(USER_DATA_64_AT, 1, &[0xfe]),
            "invalid_encoding",
        ),
        (
            "code 65536",
            splice(CODE_AT, 1, &[0xfc, 0, 0, 1, 0]),
            "invalid_encoding",
        ),
        ("count 0", many(0, &[0]), "empty_batch"),
        (
            "count 0, then a record",
            splice(COUNT_AT, 1, &[0]),
            "invalid_encoding",
        ),
        (
            "8,191 records",
            many(8_191, &[0xfb, 0xff, 0x1f]),
            "too_many_events",
        ),
    ];
    for (name, body, expected) in cases {
        match codec::decode_operation(&body) {
            Err(e) => assert_eq!(reason(&e), expected, "{name}: {e}"),
            Ok(op) => panic!("{name} was accepted: {} events", op.len()),
        }
    }
    let full = codec::decode_operation(&many(8_190, &[0xfb, 0xfe, 0x1f])).expect("8,190 decode");
    assert_eq!(full.len(), 8_190);
}

/// The decoder also reads a longer varint than the shortest (`fb 07 00` for 7); re-encoding
/// gives the shortest form, so such a body does not round-trip byte for byte.
#[test]
fn a_longer_varint_reads_as_the_same_value() {
    let op = codec::decode_operation(&splice(LEDGER_AT, 1, &[0xfb, 0x07, 0x00]))
        .expect("a three-byte 7 decodes");
    assert_eq!(op, Operation::CreateAccounts(vec![documented_account()]));
    assert_eq!(
        hex::encode(&codec::encode(Kind::Operation, &op)),
        ACCOUNT_VECTOR
    );
}

/// The JSON bodies printed beside the vectors are the same requests.
#[test]
fn the_json_forms_are_the_same_requests() {
    let accounts: Vec<Account> = serde_json::from_str(ACCOUNT_JSON).expect("account JSON parses");
    assert_eq!(accounts, vec![documented_account()]);
    let transfers: Vec<Transfer> =
        serde_json::from_str(TRANSFER_JSON).expect("transfer JSON parses");
    assert_eq!(transfers, vec![documented_transfer()]);
}

/// `docs/API.md` carries both vectors and both JSON forms exactly as this file does, so the page
/// and the test cannot drift apart.
#[test]
fn api_md_carries_these_vectors() {
    // Where Cargo runs this test from (a test binary may have been compiled in another checkout).
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
    let path = format!("{dir}/../docs/API.md");
    let doc = std::fs::read_to_string(path).expect("docs/API.md is readable");
    let doc: String = doc.split_whitespace().collect();
    for (name, text) in [
        ("vector (a)", ACCOUNT_VECTOR),
        ("vector (b)", TRANSFER_VECTOR),
        ("JSON (a)", ACCOUNT_JSON),
        ("JSON (b)", TRANSFER_JSON),
    ] {
        let text: String = text.split_whitespace().collect();
        assert!(doc.contains(&text), "docs/API.md lacks {name}: {text}");
    }
}
