//! A result link from anywhere: decoding never panics, and what it accepts survives a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walf_lab::share::SharedResult;

fuzz_target!(|data: &[u8]| {
    let Ok(link) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(result) = SharedResult::from_link(link) {
        let again = result.to_link().expect("an accepted result encodes");
        let back = SharedResult::from_link(&again).expect("its own link decodes");
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&result).unwrap()
        );
        // the views drawn from it
        for after in [false, true] {
            let _ = result.distributions(after);
            for target in [walf_lab::bias::Target::Equal, walf_lab::bias::Target::RealWorld] {
                let _ = result.report(target, after);
            }
        }
    }
});
