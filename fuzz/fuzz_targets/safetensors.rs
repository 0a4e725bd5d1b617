//! Fuzzes the safetensors loader, `Weights::from_safetensors`; the body is `seqless_fuzz::safetensors`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqless_fuzz::safetensors(data));
