//! One invocation's store traffic and kernel time: reads that check what they got, writes
//! with the TTL, values carried in the event or returned in the result instead of the
//! store, and CPU work run off the async reactor.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use seqless_store::tensor::rows_from_blob;
use seqless_store::{Fetched, QueryId, StoreError, StoredTensor};
use seqless_wire::{FilmSource, InlineValue, RowSource};

use super::FunctionContext;
use crate::error::FunctionError;

/// A stage's view of the store for one query, counting bytes both ways and kernel time.
pub(super) struct StageIo<'a> {
    ctx: &'a FunctionContext,
    query: QueryId,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    pub(super) compute: Duration,
    /// Time blocked waiting for other functions' values.
    pub(super) waited: Duration,
    /// Inputs the event carries, by key.
    inline: HashMap<String, InlineValue>,
    /// Outputs to return instead of storing, not yet written.
    reply: HashSet<String>,
    /// Outputs returned inline, for the result.
    pub(super) inline_out: Vec<InlineValue>,
}

/// A conv stage's input rows as stored: token ids for the first layer, activations after.
pub(super) enum StoredRows {
    /// Token ids, embedded with the kernels (off the reactor).
    Tokens(Vec<u16>),
    /// `[n, C_{l-1}]` activation rows.
    Activations(Vec<f32>),
}

impl<'a> StageIo<'a> {
    /// A stage's view for `query`, reading `inline` values from the event and returning
    /// the outputs named in `reply` instead of storing them.
    pub(super) fn new(
        ctx: &'a FunctionContext,
        query: QueryId,
        inline: Vec<InlineValue>,
        reply: Vec<String>,
    ) -> Self {
        Self {
            ctx,
            query,
            bytes_in: 0,
            bytes_out: 0,
            compute: Duration::ZERO,
            waited: Duration::ZERO,
            inline: inline.into_iter().map(|v| (v.key.clone(), v)).collect(),
            reply: reply.into_iter().collect(),
            inline_out: Vec::new(),
        }
    }

    fn read(&mut self, fetched: Fetched) -> StoredTensor {
        self.bytes_in += fetched.bytes;
        fetched.tensor
    }

    /// `rows` of the inline value `name` (all of them when `None`), or `None` when the
    /// event does not carry it.
    fn inline_rows(
        &self,
        name: &str,
        rows: Option<Range<usize>>,
    ) -> Option<Result<StoredTensor, FunctionError>> {
        let value = self.inline.get(name)?;
        let Some(rows) = rows else {
            return Some(StoredTensor::decode(&value.blob).map_err(FunctionError::from));
        };
        let local = value.local_rows(&rows).ok_or_else(|| {
            FunctionError::permanent(format!(
                "{name}: the event carries rows from {}, the stage reads rows {rows:?}",
                value.first_row
            ))
        });
        Some(local.and_then(|local| Ok(rows_from_blob(name, &value.blob, local)?.0)))
    }

    /// Rows `rows` of `name`, from the event or the store.
    async fn get_rows(
        &mut self,
        name: &str,
        rows: Range<usize>,
    ) -> Result<StoredTensor, FunctionError> {
        if let Some(inline) = self.inline_rows(name, Some(rows.clone())) {
            return inline;
        }
        let fetched = self.ctx.store.get_rows(&self.query.key(name), rows).await?;
        Ok(self.read(fetched))
    }

    /// Fails when the event asked for an output inline that the stage never wrote: the
    /// coordinator would wait for a value that is nowhere.
    pub(super) fn check_replied(&self) -> Result<(), FunctionError> {
        match self.reply.iter().next() {
            None => Ok(()),
            Some(key) => Err(FunctionError::permanent(format!(
                "the event asks for `{key}` inline, but this stage does not write it"
            ))),
        }
    }

    /// Writes `[rows, channels]` f32 data under the query's key `name`.
    pub(super) async fn put_rows(
        &mut self,
        name: &str,
        channels: usize,
        data: Vec<f32>,
    ) -> Result<(), FunctionError> {
        let tensor = StoredTensor::f32(vec![data.len() / channels, channels], data)?;
        if self.reply.remove(name) {
            self.inline_out.push(InlineValue {
                key: name.to_owned(),
                first_row: 0,
                blob: tensor.encode(),
            });
            return Ok(());
        }
        let key = self.query.key(name);
        self.bytes_out += self.ctx.store.put(&key, &tensor, self.ctx.ttl).await?;
        Ok(())
    }

    /// Writes like [`StageIo::put_rows`], then wakes whoever waits for `name`.
    pub(super) async fn put_signalled(
        &mut self,
        name: &str,
        channels: usize,
        data: Vec<f32>,
    ) -> Result<(), FunctionError> {
        self.put_rows(name, channels, data).await?;
        self.ctx
            .store
            .signal(&self.query.key(name), self.ctx.ttl)
            .await?;
        Ok(())
    }

    /// Blocks until `name` exists, or fails with a retryable error once `deadline` passes;
    /// `waiter` says who waits (split and layer), for that error.
    pub(super) async fn wait_for(
        &mut self,
        name: &str,
        deadline: Instant,
        waiter: &str,
    ) -> Result<(), FunctionError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let started = Instant::now();
        let waited = self.ctx.store.wait_for(&self.query.key(name), left).await;
        self.waited += started.elapsed();
        match waited {
            Err(StoreError::Timeout { .. }) => Err(FunctionError::retryable(format!(
                "{waiter} waited {left:?}, the query's deadline, for `{name}`, which was not written"
            ))),
            other => Ok(other?),
        }
    }

    /// Runs CPU-bound kernel work on the blocking pool and counts its time.
    pub(super) async fn compute<T: Send + 'static>(
        &mut self,
        work: impl FnOnce() -> Result<T, FunctionError> + Send + 'static,
    ) -> Result<T, FunctionError> {
        let start = Instant::now();
        let out = tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| FunctionError::permanent(format!("kernel task failed: {e}")))??;
        self.compute += start.elapsed();
        Ok(out)
    }

    /// Reads and concatenates the `[n, channels]` f32 tensors under `names`, in order.
    pub(super) async fn read_concat(
        &mut self,
        names: &[String],
        channels: usize,
    ) -> Result<Vec<f32>, FunctionError> {
        if names.is_empty() {
            return Err(FunctionError::permanent(
                "the stage names no tensor to read",
            ));
        }
        let stored: Vec<String> = (names.iter())
            .filter(|n| !self.inline.contains_key(n.as_str()))
            .map(|n| self.query.key(n))
            .collect();
        let mut fetched = self.ctx.store.get_many(&stored).await?.into_iter();
        let mut out = Vec::new();
        for name in names {
            let tensor = match self.inline_rows(name, None) {
                Some(inline) => inline?,
                None => {
                    let next = fetched.next().ok_or_else(|| {
                        FunctionError::permanent(format!("the store returned no value for {name}"))
                    })?;
                    self.read(next)
                }
            };
            out.extend(f32_rows(name, tensor, channels)?);
        }
        Ok(out)
    }

    /// Gathers a conv stage's input rows (own rows plus neighbours' halos) in global order:
    /// token ids, checked against the vocabulary, when `tokens`; else `channels`-wide rows.
    pub(super) async fn read_rows(
        &mut self,
        sources: &[RowSource],
        tokens: bool,
        channels: usize,
    ) -> Result<StoredRows, FunctionError> {
        let inline: Vec<_> = (sources.iter())
            .map(|s| self.inline_rows(&s.key, Some(s.rows.clone())))
            .collect();
        let stored: Vec<(String, Range<usize>)> = (sources.iter().zip(&inline))
            .filter(|(_, inline)| inline.is_none())
            .map(|(s, _)| (self.query.key(&s.key), s.rows.clone()))
            .collect();
        let store = &self.ctx.store;
        let fetches = (stored.iter()).map(|(key, rows)| store.get_rows(key, rows.clone()));
        let mut fetched = try_join_all(fetches).await?.into_iter();
        let mut pieces = Vec::with_capacity(sources.len());
        for (source, inline) in sources.iter().zip(inline) {
            pieces.push(match inline {
                Some(tensor) => tensor?,
                None => {
                    let next = fetched.next().ok_or_else(|| {
                        FunctionError::permanent(format!(
                            "the store returned no rows of {}",
                            source.key
                        ))
                    })?;
                    self.read(next)
                }
            });
        }
        let mut ids = Vec::new();
        let mut rows = Vec::new();
        for (source, tensor) in sources.iter().zip(pieces) {
            if tokens {
                ids.extend(token_ids(&source.key, tensor)?);
            } else {
                rows.extend(f32_rows(&source.key, tensor, channels)?);
            }
        }
        Ok(if tokens {
            StoredRows::Tokens(ids)
        } else {
            StoredRows::Activations(rows)
        })
    }

    /// Waits for each of `sources` (neighbours' edge rows, `channels` wide) and reads its
    /// rows, in order.
    pub(super) async fn wait_rows(
        &mut self,
        sources: &[RowSource],
        channels: usize,
        deadline: Instant,
        waiter: &str,
    ) -> Result<Vec<f32>, FunctionError> {
        let mut rows = Vec::new();
        for source in sources {
            self.wait_for(&source.key, deadline, waiter).await?;
            let tensor = self.get_rows(&source.key, source.rows.clone()).await?;
            rows.extend(f32_rows(&source.key, tensor, channels)?);
        }
        Ok(rows)
    }

    /// Reads the blocks of the previous layer's LSTM output that a conv stage modulates with.
    pub(super) async fn read_film(
        &mut self,
        film: &FilmSource,
        channels: usize,
    ) -> Result<Vec<f32>, FunctionError> {
        let tensor = self.get_rows(&film.key, film.blocks.clone()).await?;
        f32_rows(&film.key, tensor, channels)
    }
}

fn f32_rows(key: &str, tensor: StoredTensor, channels: usize) -> Result<Vec<f32>, FunctionError> {
    if tensor.shape().len() != 2 || tensor.shape()[1] != channels {
        return Err(FunctionError::permanent(format!(
            "{key}: expected rows of {channels} channels, found shape {:?}",
            tensor.shape()
        )));
    }
    Ok(tensor.into_f32()?)
}

fn token_ids(key: &str, tensor: StoredTensor) -> Result<Vec<u16>, FunctionError> {
    let ids = tensor.into_u16()?;
    if let Some(bad) = ids
        .iter()
        .find(|&&id| usize::from(id) >= seqless_model::config::BYTE_VOCAB)
    {
        return Err(FunctionError::permanent(format!(
            "{key}: token id {bad} is out of range for the byte vocabulary of {}",
            seqless_model::config::BYTE_VOCAB
        )));
    }
    Ok(ids)
}
