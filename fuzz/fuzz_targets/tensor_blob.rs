//! Fuzzes the tensor blob decoder, `StoredTensor::decode`; the body is `seqless_fuzz::tensor_blob`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| seqless_fuzz::tensor_blob(data));
