//! Fuzzes the stage event, `FunctionEvent::from_json` then `handle`; the body is `seqless_fuzz::stage_event`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqless_fuzz::stage_event(data));
