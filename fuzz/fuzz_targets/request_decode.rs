//! Any bytes as a client request body: the binary codec (`decode_operation`) and the JSON
//! parsers for transfers and accounts must return a value or an error, never panic; a decoded
//! operation must re-encode (with the codec's own encoder) to bytes that decode to an equal value.
#![no_main]

use ledger::codec::{self, Kind};
use ledger::{Account, Transfer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(op) = codec::decode_operation(data) {
        let bytes = codec::encode(Kind::Operation, &op);
        let again = codec::decode_operation(&bytes).expect("re-encoded operation decodes");
        assert_eq!(again, op, "codec round trip");
    }
    let _ = codec::operation_from_json(data);
    let _ = serde_json::from_slice::<Vec<Transfer>>(data);
    let _ = serde_json::from_slice::<Vec<Account>>(data);
});
