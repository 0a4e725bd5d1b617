//! The values a query carries through the coordinator instead of the store
//! ([`Transfer::Inline`](seqless_plan::Transfer)): which keys, the blobs returned so far,
//! and what each stage's event holds of them.

use std::collections::{BTreeSet, HashMap};

use seqless_functions::FunctionError;
use seqless_plan::{InlineValue, Stage, read_windows};
use seqless_store::StoredTensor;
use seqless_store::tensor::rows_from_blob;

/// One query's inline values.
#[derive(Debug, Default)]
pub(crate) struct InlineValues {
    /// The keys that travel inline ([`seqless_plan::Plan::inline_keys`]).
    keys: BTreeSet<String>,
    /// Their blobs (the store's encoding), once written.
    blobs: HashMap<String, Vec<u8>>,
}

impl InlineValues {
    pub(crate) fn new(keys: BTreeSet<String>) -> Self {
        Self {
            keys,
            blobs: HashMap::new(),
        }
    }

    /// The keys that travel inline.
    pub(crate) fn keys(&self) -> &BTreeSet<String> {
        &self.keys
    }

    /// Whether `key` travels inline.
    pub(crate) fn carries(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    /// Keeps a value the coordinator wrote itself (the query's token ids).
    pub(crate) fn put(&mut self, key: &str, tensor: &StoredTensor) {
        self.blobs.insert(key.to_owned(), tensor.encode());
    }

    /// The inline values `stage` reads, each cut to the rows it reads.
    pub(crate) fn attachments(&self, stage: &Stage) -> Result<Vec<InlineValue>, FunctionError> {
        let mut out = Vec::new();
        for (key, rows) in read_windows(&stage.op) {
            let Some(blob) = self.keys.contains(key).then(|| self.blobs.get(key)) else {
                continue;
            };
            let blob = blob.ok_or_else(|| {
                FunctionError::permanent(format!(
                    "`{key}` travels inline, but no stage before this one returned it"
                ))
            })?;
            let value = match rows {
                None => InlineValue {
                    key: key.to_owned(),
                    first_row: 0,
                    blob: blob.clone(),
                },
                Some(rows) => {
                    let (tensor, _) = rows_from_blob(key, blob, rows.clone())
                        .map_err(|e| FunctionError::permanent(e.to_string()))?;
                    InlineValue {
                        key: key.to_owned(),
                        first_row: rows.start,
                        blob: tensor.encode(),
                    }
                }
            };
            out.push(value);
        }
        Ok(out)
    }

    /// The outputs of `stage` to return inline.
    pub(crate) fn replies(&self, stage: &Stage) -> Vec<String> {
        let written = stage.op.written_keys().into_iter();
        written.filter(|k| self.carries(k)).collect()
    }

    /// Keeps what `stage` returned inline, refusing an answer that lacks an output asked
    /// for, or holds one that was not.
    pub(crate) fn accept(
        &mut self,
        stage: &Stage,
        returned: Vec<InlineValue>,
    ) -> Result<(), FunctionError> {
        let mut wanted: BTreeSet<String> = self.replies(stage).into_iter().collect();
        for value in returned {
            if !wanted.remove(&value.key) || value.first_row != 0 {
                return Err(FunctionError::permanent(format!(
                    "the function returned `{}` inline, which was not asked for whole",
                    value.key
                )));
            }
            self.blobs.insert(value.key, value.blob);
        }
        match wanted.into_iter().next() {
            None => Ok(()),
            Some(key) => Err(FunctionError::permanent(format!(
                "the function did not return `{key}`, asked for inline"
            ))),
        }
    }
}

/// Payload bytes of inline values.
pub(crate) fn blob_bytes(values: &[InlineValue]) -> u64 {
    values.iter().map(|v| v.blob.len() as u64).sum()
}
