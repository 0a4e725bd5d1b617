//! seqless-coordinator (placeholder, being written).
