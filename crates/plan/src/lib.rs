//! seqless-plan (placeholder, being written).
