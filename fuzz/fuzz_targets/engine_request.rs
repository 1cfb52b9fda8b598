//! The messages the worker reads (JSON from the page): never a panic, and an accepted request
//! says the same thing once written back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walf_lab::protocol::Request;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(request) = Request::from_json(text) {
        let again = Request::from_json(&request.to_json()).expect("its own JSON reads");
        assert_eq!(again, request);
    }
});
