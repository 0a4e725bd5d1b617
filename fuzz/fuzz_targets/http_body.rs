//! Fuzzes the classify request bodies, through the real router; the body is `seqless_fuzz::http_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqless_fuzz::http_body(data));
