//! seqless-functions (placeholder, being written).
