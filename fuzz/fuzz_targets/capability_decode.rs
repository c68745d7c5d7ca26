//! Any bytes, twice: as token text (if UTF-8) and as the binary form behind `rlcap1.` (so the
//! fuzzer reaches the field parser without having to learn base64). `Token::decode` must return
//! a token or an error without panicking; a decoded token must re-encode to text that decodes
//! to an equal token; verifying it against a fixed key ring must not panic and must fail (the
//! fuzzer cannot forge a MAC); re-minted under a ring key with the same header and caveats,
//! verification must get past the MAC and still not panic.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ledger::capability::{
    CapError, KeyRing, Token, VerifyContext, DEFAULT_MAX_LIFETIME_SECS, TOKEN_PREFIX,
};
use libfuzzer_sys::fuzz_target;

fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let mut ring = KeyRing::new();
        ring.generate_entry("k1", [0x42; 32]).expect("fixed key");
        ring.generate_entry("k2", [0x24; 32]).expect("fixed key");
        ring
    })
}

fn exercise(text: &str) {
    let Ok(token) = Token::decode(text) else {
        return;
    };
    let encoded = token.encode();
    let again = Token::decode(&encoded).expect("a decoded token re-encodes to valid text");
    assert_eq!(again, token, "encode/decode round trip");
    assert_eq!(again.encode(), encoded, "encoding is canonical");
    let _ = token.inspect();
    let _ = token.attenuate(Vec::new());

    let contexts = [true, false].map(|require_kid| VerifyContext {
        now_secs: 1_700_000_000,
        audience: "fuzz",
        max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        require_kid,
    });
    for ctx in &contexts {
        if let Ok(grant) = token.verify(ring(), ctx) {
            panic!("a fuzzed token verified without the key: {grant:?}");
        }
    }

    // The same header and caveats with a genuine MAC: exercises every check after the MAC.
    let Some(key) = ring().get("k1") else {
        return;
    };
    if let Ok(minted) = Token::mint(key, token.id, token.issued_at, token.caveats.clone()) {
        for ctx in &contexts {
            let result = minted.verify(ring(), ctx);
            assert_ne!(result.as_ref().err(), Some(&CapError::BadMac));
            if let Ok(grant) = result {
                for op in ledger::capability::Op::ALL {
                    let _ = grant.allow_op(op);
                }
                let _ = grant.allow_account(7);
                let _ = grant.allow_transfer(1, 7, 1_000);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        exercise(text);
    }
    let mut text = String::from(TOKEN_PREFIX);
    URL_SAFE_NO_PAD.encode_string(data, &mut text);
    exercise(&text);
});
