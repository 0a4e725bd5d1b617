//! Fuzzes the `config.json` parser, `ModelConfig::from_json`; the body is `seqless_fuzz::model_config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqless_fuzz::model_config(data));
