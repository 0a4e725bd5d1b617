//! Tensors as the store holds them, and their binary blob format.
//!
//! # Blob format (version 1)
//!
//! A blob is a fixed 48-byte header followed by the payload; all integers are
//! little-endian.
//!
//! | offset | size | field                                                   |
//! |-------:|-----:|---------------------------------------------------------|
//! |      0 |    4 | magic `b"SQLT"`                                         |
//! |      4 |    1 | format version, `1`                                     |
//! |      5 |    1 | dtype: `1` = f32, `2` = u16                             |
//! |      6 |    1 | ndim, 0..=4                                             |
//! |      7 |    1 | reserved, `0`                                           |
//! |      8 |   32 | four dims as u64; dims past ndim are `0`                |
//! |     40 |    4 | CRC-32 (IEEE) of the payload                            |
//! |     44 |    4 | CRC-32 (IEEE) of header bytes 0..44                     |
//! |     48 |    … | payload: elements in row-major order                    |
//!
//! The header has a fixed size so that the byte range of rows `a..b` of dimension 0
//! is `48 + a * row_bytes .. 48 + b * row_bytes`: a reader can fetch a halo of a
//! neighbour's activation with two small range reads (header, then rows) instead of
//! the whole blob. A range read checks the header CRC and the bounds, but cannot
//! check the payload CRC, which covers the whole payload; full reads check both.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::error::StoreError;

/// Size in bytes of the fixed blob header.
pub const HEADER_LEN: usize = 48;
/// Most dimensions a stored tensor may have; the fixed header has room for four.
pub const MAX_NDIM: usize = 4;

const MAGIC: [u8; 4] = *b"SQLT";
const VERSION: u8 = 1;
const DIMS_AT: usize = 8;
const PAYLOAD_CRC_AT: usize = 40;
const HEADER_CRC_AT: usize = 44;
/// Payload bytes converted per step while streaming a blob out (fits the stack).
const STREAM_CHUNK_BYTES: usize = 16 * 1024;
/// Key named in errors from [`StoredTensor::decode`], which has no key.
const UNNAMED: &str = "<blob>";

/// Element type of a stored tensor.
///
/// Activations and gamma/beta are f32; token ids are u16 (byte + 1 fits, and it
/// halves the input upload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 16-bit unsigned integer.
    U16,
}

impl DType {
    /// Bytes per element, which fixes the payload size for a shape.
    pub fn size_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::U16 => 2,
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::F32 => 1,
            Self::U16 => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::F32),
            2 => Some(Self::U16),
            _ => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::U16 => "u16",
        })
    }
}

/// The elements of a tensor, row-major, typed by dtype.
#[derive(Clone, PartialEq)]
pub enum TensorData {
    /// f32 elements.
    F32(Vec<f32>),
    /// u16 elements.
    U16(Vec<u16>),
}

impl TensorData {
    /// Element type of the data.
    pub fn dtype(&self) -> DType {
        match self {
            Self::F32(_) => DType::F32,
            Self::U16(_) => DType::U16,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::U16(v) => v.len(),
        }
    }

    /// Whether there are no elements (a shape with a zero dimension).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for TensorData {
    // Activations run to megabytes; print a preview, not every element.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const PREVIEW: usize = 8;
        match self {
            Self::F32(v) => write!(f, "F32(len {}, {:?}…)", v.len(), &v[..v.len().min(PREVIEW)]),
            Self::U16(v) => write!(f, "U16(len {}, {:?}…)", v.len(), &v[..v.len().min(PREVIEW)]),
        }
    }
}

/// A tensor with its shape, as written to and read from a [`crate::TensorStore`].
///
/// The constructors check that the shape matches the data, so every
/// `StoredTensor` can be encoded, and every decoded one is consistent.
///
/// Clones share one copy of the elements (as candle's tensors share storage): a store
/// can hand a tensor to a writer thread that outlives the `put`'s borrow, and send the
/// payload from the tensor's own memory, without copying megabytes to do so.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTensor {
    shape: Vec<usize>,
    data: Arc<TensorData>,
}

impl StoredTensor {
    /// An f32 tensor; fails if `shape` has more than [`MAX_NDIM`] dimensions or its
    /// product is not `data.len()`.
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Result<Self, StoreError> {
        Self::new(shape, TensorData::F32(data))
    }

    /// A u16 tensor; same checks as [`StoredTensor::f32`].
    pub fn u16(shape: Vec<usize>, data: Vec<u16>) -> Result<Self, StoreError> {
        Self::new(shape, TensorData::U16(data))
    }

    /// A tensor from either kind of data; same checks as [`StoredTensor::f32`].
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Self, StoreError> {
        if shape.len() > MAX_NDIM {
            return Err(StoreError::invalid(format!(
                "shape {shape:?} has {} dimensions, the store holds at most {MAX_NDIM}",
                shape.len()
            )));
        }
        let numel = checked_numel(&shape).ok_or_else(|| {
            StoreError::invalid(format!("shape {shape:?} has more elements than memory"))
        })?;
        if numel != data.len() {
            return Err(StoreError::invalid(format!(
                "shape {shape:?} needs {numel} elements, the data has {}",
                data.len()
            )));
        }
        Ok(Self {
            shape,
            data: Arc::new(data),
        })
    }

    /// The dimensions, outermost first; empty for a scalar.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// Rows along dimension 0, the axis that row-range reads slice (1 for a scalar).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// The elements.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The f32 elements, or [`StoreError::DTypeMismatch`].
    pub fn as_f32(&self) -> Result<&[f32], StoreError> {
        match &*self.data {
            TensorData::F32(v) => Ok(v),
            other => Err(mismatch(DType::F32, other.dtype())),
        }
    }

    /// The u16 elements, or [`StoreError::DTypeMismatch`].
    pub fn as_u16(&self) -> Result<&[u16], StoreError> {
        match &*self.data {
            TensorData::U16(v) => Ok(v),
            other => Err(mismatch(DType::U16, other.dtype())),
        }
    }

    /// The f32 elements, or [`StoreError::DTypeMismatch`]; without a copy unless a
    /// clone of this tensor is still alive.
    pub fn into_f32(self) -> Result<Vec<f32>, StoreError> {
        match Arc::unwrap_or_clone(self.data) {
            TensorData::F32(v) => Ok(v),
            other => Err(mismatch(DType::F32, other.dtype())),
        }
    }

    /// The u16 elements, or [`StoreError::DTypeMismatch`]; without a copy unless a
    /// clone of this tensor is still alive.
    pub fn into_u16(self) -> Result<Vec<u16>, StoreError> {
        match Arc::unwrap_or_clone(self.data) {
            TensorData::U16(v) => Ok(v),
            other => Err(mismatch(DType::U16, other.dtype())),
        }
    }

    /// Checks the shape against what the plan expects, naming `key` on failure, so
    /// a wiring bug between stages is reported where it is detected.
    pub fn expect_shape(&self, key: &str, expected: &[usize]) -> Result<(), StoreError> {
        if self.shape == expected {
            Ok(())
        } else {
            Err(StoreError::ShapeMismatch {
                key: key.to_owned(),
                expected: expected.to_vec(),
                found: self.shape.clone(),
            })
        }
    }

    /// Size of [`StoredTensor::encode`]'s output, without encoding.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.data.len() * self.dtype().size_bytes()
    }

    /// The blob described in the module docs.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write_encoded(&mut out)
            .expect("writing into a Vec cannot fail");
        out
    }

    /// Streams the blob into `out` without building it in memory first: a store can
    /// write it into a command buffer, or through a `BufWriter` to a socket, which
    /// passes the payload (larger than its buffer) from the tensor's memory to the
    /// kernel without copying it.
    pub fn write_encoded(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut crc = crc32fast::Hasher::new();
        self.for_each_payload_chunk(|bytes| {
            crc.update(bytes);
            Ok(())
        })?;
        out.write_all(&self.header(crc.finalize()))?;
        self.for_each_payload_chunk(|bytes| out.write_all(bytes))
    }

    /// Hands the payload's little-endian bytes to `sink` in order. On little-endian
    /// machines that is the elements' own memory in one piece (no conversion pass); on
    /// big-endian ones, byte-swapped stack-sized chunks (checksumming and writing need
    /// the bytes, not a full-size buffer).
    fn for_each_payload_chunk(
        &self,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if cfg!(target_endian = "little") {
            return sink(match &*self.data {
                TensorData::F32(v) => bytemuck::cast_slice(v),
                TensorData::U16(v) => bytemuck::cast_slice(v),
            });
        }
        match &*self.data {
            TensorData::F32(v) => stream_le(v, f32::to_le_bytes, sink),
            TensorData::U16(v) => stream_le(v, u16::to_le_bytes, sink),
        }
    }

    /// The fixed header for this tensor, given its payload's CRC.
    fn header(&self, payload_crc: u32) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = self.dtype().code();
        // The constructors cap ndim at MAX_NDIM, so it fits a byte.
        out[6] = self.shape.len() as u8;
        for (i, &dim) in self.shape.iter().enumerate() {
            let at = DIMS_AT + 8 * i;
            out[at..at + 8].copy_from_slice(&(dim as u64).to_le_bytes());
        }
        out[PAYLOAD_CRC_AT..PAYLOAD_CRC_AT + 4].copy_from_slice(&payload_crc.to_le_bytes());
        let header_crc = crc32fast::hash(&out[..HEADER_CRC_AT]);
        out[HEADER_CRC_AT..HEADER_LEN].copy_from_slice(&header_crc.to_le_bytes());
        out
    }

    /// Parses and fully validates a blob (header fields, header CRC, payload length
    /// and payload CRC); any failure is [`StoreError::Corrupt`].
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        decode_blob(UNNAMED, bytes)
    }
}

fn mismatch(expected: DType, found: DType) -> StoreError {
    StoreError::DTypeMismatch { expected, found }
}

fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Decodes a whole blob read from `key`, checking everything including the payload CRC.
pub(crate) fn decode_blob(key: &str, bytes: &[u8]) -> Result<StoredTensor, StoreError> {
    let header = Header::parse(key, bytes)?;
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != header.payload_len {
        return Err(StoreError::corrupt(
            key,
            format!(
                "payload is {} bytes, shape {:?} of {} needs {}",
                payload.len(),
                header.shape,
                header.dtype,
                header.payload_len
            ),
        ));
    }
    let crc = crc32fast::hash(payload);
    if crc != header.payload_crc {
        return Err(StoreError::corrupt(
            key,
            format!(
                "payload CRC mismatch (stored {:#010x}, computed {crc:#010x})",
                header.payload_crc
            ),
        ));
    }
    tensor_from_payload(key, header.dtype, header.shape, payload)
}

/// Builds a tensor from little-endian element bytes whose length was already checked.
pub(crate) fn tensor_from_payload(
    key: &str,
    dtype: DType,
    shape: Vec<usize>,
    payload: &[u8],
) -> Result<StoredTensor, StoreError> {
    let data = match dtype {
        DType::F32 => TensorData::F32(
            from_le_payload::<u32>(payload)
                .into_iter()
                .map(f32::from_bits)
                .collect(),
        ),
        DType::U16 => TensorData::U16(from_le_payload(payload)),
    };
    StoredTensor::new(shape, data).map_err(|e| StoreError::corrupt(key, e.to_string()))
}

/// Little-endian element bytes as native integers. On little-endian machines (all the
/// targets seqless ships for) this is one `memcpy` into an aligned vector, which matters
/// at megabytes per read; elsewhere each element is byte-swapped.
fn from_le_payload<T: bytemuck::Pod + LeInt>(payload: &[u8]) -> Vec<T> {
    let mut out: Vec<T> = bytemuck::pod_collect_to_vec(payload);
    if cfg!(target_endian = "big") {
        out.iter_mut().for_each(|x| *x = x.swap_from_le());
    }
    out
}

/// The byte-order fix-up of [`from_le_payload`] and [`StoredTensor::write_encoded`].
trait LeInt: Copy {
    fn swap_from_le(self) -> Self;
}

impl LeInt for u32 {
    fn swap_from_le(self) -> Self {
        u32::from_le(self)
    }
}

impl LeInt for u16 {
    fn swap_from_le(self) -> Self {
        u16::from_le(self)
    }
}

/// A validated blob header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Header {
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<usize>,
    pub(crate) payload_crc: u32,
    /// Payload bytes the shape and dtype imply.
    pub(crate) payload_len: usize,
}

/// Where a row range lies in a blob, and the shape of the slice.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowSpan {
    /// Byte offset of the first row in the blob (header included).
    pub(crate) offset: usize,
    /// Bytes the rows occupy.
    pub(crate) len: usize,
    /// Shape of the slice: `[rows.len(), shape[1..]..]`.
    pub(crate) shape: Vec<usize>,
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes of `bytes` (more may follow) and checks
    /// every header field and the header CRC.
    pub(crate) fn parse(key: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::corrupt(key, reason);
        if bytes.len() < HEADER_LEN {
            return Err(corrupt(format!(
                "truncated: {} bytes, a tensor header needs {HEADER_LEN}",
                bytes.len()
            )));
        }
        let h = &bytes[..HEADER_LEN];
        if h[..4] != MAGIC {
            return Err(corrupt(format!(
                "not a seqless tensor (starts with {:?}, expected \"SQLT\")",
                String::from_utf8_lossy(&h[..4])
            )));
        }
        if h[4] != VERSION {
            return Err(corrupt(format!(
                "unsupported format version {} (this build reads {VERSION})",
                h[4]
            )));
        }
        let stored_crc = read_u32(h, HEADER_CRC_AT);
        let crc = crc32fast::hash(&h[..HEADER_CRC_AT]);
        if crc != stored_crc {
            return Err(corrupt(format!(
                "header CRC mismatch (stored {stored_crc:#010x}, computed {crc:#010x})"
            )));
        }
        let dtype = DType::from_code(h[5])
            .ok_or_else(|| corrupt(format!("unknown dtype code {}", h[5])))?;
        let ndim = usize::from(h[6]);
        if ndim > MAX_NDIM {
            return Err(corrupt(format!("ndim {ndim} exceeds {MAX_NDIM}")));
        }
        if h[7] != 0 {
            return Err(corrupt(format!("reserved byte is {}, expected 0", h[7])));
        }
        let mut shape = Vec::with_capacity(ndim);
        for i in 0..MAX_NDIM {
            let dim = read_u64(h, DIMS_AT + 8 * i);
            if i < ndim {
                let dim = usize::try_from(dim)
                    .map_err(|_| corrupt(format!("dimension {i} is {dim}, too large")))?;
                shape.push(dim);
            } else if dim != 0 {
                return Err(corrupt(format!("unused dimension slot {i} holds {dim}")));
            }
        }
        let payload_len = checked_numel(&shape)
            .and_then(|n| n.checked_mul(dtype.size_bytes()))
            .and_then(|n| n.checked_add(HEADER_LEN).map(|_| n))
            .ok_or_else(|| corrupt(format!("shape {shape:?} is too large")))?;
        Ok(Self {
            dtype,
            shape,
            payload_crc: read_u32(h, PAYLOAD_CRC_AT),
            payload_len,
        })
    }

    /// Rows along dimension 0 (1 for a scalar).
    pub(crate) fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Total blob length the header implies.
    pub(crate) fn blob_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Locates `rows` of dimension 0 in the blob, or [`StoreError::RowRange`].
    pub(crate) fn row_span(&self, key: &str, rows: Range<usize>) -> Result<RowSpan, StoreError> {
        let total = self.rows();
        if rows.start > rows.end || rows.end > total {
            return Err(StoreError::RowRange {
                key: key.to_owned(),
                start: rows.start,
                end: rows.end,
                rows: total,
            });
        }
        // Both fit: the whole payload's size was checked in `parse`.
        let row_bytes = checked_numel(self.shape.get(1..).unwrap_or(&[])).unwrap_or(0)
            * self.dtype.size_bytes();
        let mut shape = Vec::with_capacity(self.shape.len().max(1));
        shape.push(rows.len());
        shape.extend_from_slice(self.shape.get(1..).unwrap_or(&[]));
        Ok(RowSpan {
            offset: HEADER_LEN + rows.start * row_bytes,
            len: rows.len() * row_bytes,
            shape,
        })
    }
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Slices rows out of a whole blob held in memory, validating as a range read would; with
/// the bytes a range read of them would move.
pub fn rows_from_blob(
    key: &str,
    blob: &[u8],
    rows: Range<usize>,
) -> Result<(StoredTensor, u64), StoreError> {
    let header = Header::parse(key, blob)?;
    if blob.len() != header.blob_len() {
        return Err(StoreError::corrupt(
            key,
            format!(
                "blob is {} bytes, its header implies {}",
                blob.len(),
                header.blob_len()
            ),
        ));
    }
    let span = header.row_span(key, rows)?;
    let bytes = &blob[span.offset..span.offset + span.len];
    let tensor = tensor_from_payload(key, header.dtype, span.shape, bytes)?;
    Ok((tensor, (HEADER_LEN + span.len) as u64))
}

/// Passes `values` to `sink` as little-endian bytes, through one buffer of
/// `STREAM_CHUNK_BYTES`, for hosts whose memory order is not little-endian.
fn stream_le<T: Copy, const N: usize>(
    values: &[T],
    to_le_bytes: impl Fn(T) -> [u8; N],
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut buf = [0u8; STREAM_CHUNK_BYTES];
    for chunk in values.chunks(STREAM_CHUNK_BYTES / N) {
        let bytes = &mut buf[..chunk.len() * N];
        // Fixed-size chunks with no capacity checks: this compiles to a copy.
        bytes
            .chunks_exact_mut(N)
            .zip(chunk)
            .for_each(|(dst, &x)| dst.copy_from_slice(&to_le_bytes(x)));
        sink(bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_f32() -> StoredTensor {
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        StoredTensor::f32(vec![4, 3, 2], data).unwrap()
    }

    fn is_corrupt(r: Result<StoredTensor, StoreError>, needle: &str) -> bool {
        matches!(r, Err(StoreError::Corrupt { ref reason, .. }) if reason.contains(needle))
    }

    #[test]
    fn round_trips_f32_and_u16() {
        let t = sample_f32();
        let blob = t.encode();
        assert_eq!(blob.len(), t.encoded_len());
        assert_eq!(blob.len(), HEADER_LEN + 24 * 4);
        assert_eq!(StoredTensor::decode(&blob).unwrap(), t);

        let u = StoredTensor::u16(vec![5], vec![0, 1, 256, 257, u16::MAX]).unwrap();
        let back = StoredTensor::decode(&u.encode()).unwrap();
        assert_eq!(back.dtype(), DType::U16);
        assert_eq!(back.into_u16().unwrap(), vec![0, 1, 256, 257, u16::MAX]);
    }

    #[test]
    fn clones_share_the_elements_and_into_copies_only_while_one_lives() {
        let t = sample_f32();
        let clone = t.clone();
        assert!(std::ptr::eq(
            t.as_f32().unwrap().as_ptr(),
            clone.as_f32().unwrap().as_ptr()
        ));
        let expected = t.as_f32().unwrap().to_vec();
        let shared_at = t.as_f32().unwrap().as_ptr();
        // A clone is alive: taking the elements copies them and leaves the clone intact.
        let taken = t.into_f32().unwrap();
        assert_eq!(taken, expected);
        assert!(!std::ptr::eq(taken.as_ptr(), shared_at));
        assert_eq!(clone.as_f32().unwrap(), expected.as_slice());
        // The last one standing gives up its own buffer.
        let last = clone.into_f32().unwrap();
        assert!(std::ptr::eq(last.as_ptr(), shared_at));
    }

    #[test]
    fn round_trips_payloads_spanning_many_stream_chunks() {
        // Odd sizes, so the last chunk is partial for both element widths.
        let n = 3 * STREAM_CHUNK_BYTES / 2 + 7;
        let f = StoredTensor::f32(vec![n], (0..n).map(|i| i as f32 - 0.25).collect()).unwrap();
        let blob = f.encode();
        assert_eq!(blob.len(), f.encoded_len());
        assert_eq!(
            read_u32(&blob, PAYLOAD_CRC_AT),
            crc32fast::hash(&blob[HEADER_LEN..])
        );
        assert_eq!(StoredTensor::decode(&blob).unwrap(), f);
        let u = StoredTensor::u16(vec![n], (0..n).map(|i| i as u16).collect()).unwrap();
        assert_eq!(StoredTensor::decode(&u.encode()).unwrap(), u);
    }

    #[test]
    fn round_trips_special_floats_bit_exactly() {
        let vals = vec![f32::NAN, -0.0, f32::INFINITY, f32::MIN_POSITIVE / 2.0];
        let t = StoredTensor::f32(vec![4], vals.clone()).unwrap();
        let back = StoredTensor::decode(&t.encode())
            .unwrap()
            .into_f32()
            .unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&vals));
    }

    #[test]
    fn round_trips_scalar_and_empty() {
        let s = StoredTensor::f32(vec![], vec![7.5]).unwrap();
        assert_eq!(s.rows(), 1);
        assert_eq!(StoredTensor::decode(&s.encode()).unwrap(), s);
        let e = StoredTensor::f32(vec![0, 64], vec![]).unwrap();
        assert_eq!(e.rows(), 0);
        assert_eq!(StoredTensor::decode(&e.encode()).unwrap(), e);
    }

    #[test]
    fn header_layout_is_as_documented() {
        let blob = sample_f32().encode();
        assert_eq!(&blob[..4], b"SQLT");
        assert_eq!(blob[4], 1);
        assert_eq!(blob[5], 1);
        assert_eq!(blob[6], 3);
        assert_eq!(read_u64(&blob, 8), 4);
        assert_eq!(read_u64(&blob, 16), 3);
        assert_eq!(read_u64(&blob, 24), 2);
        assert_eq!(read_u64(&blob, 32), 0);
        assert_eq!(&blob[48..52], &(-3.0f32).to_le_bytes());
    }

    #[test]
    fn constructors_check_shape() {
        assert!(matches!(
            StoredTensor::f32(vec![2, 3], vec![0.0; 5]),
            Err(StoreError::InvalidInput { .. })
        ));
        assert!(matches!(
            StoredTensor::u16(vec![1, 1, 1, 1, 1], vec![0]),
            Err(StoreError::InvalidInput { .. })
        ));
        assert!(matches!(
            StoredTensor::f32(vec![usize::MAX, 2], vec![]),
            Err(StoreError::InvalidInput { .. })
        ));
    }

    #[test]
    fn dtype_and_shape_checks_name_the_problem() {
        let t = sample_f32();
        assert!(t.as_f32().is_ok());
        assert!(matches!(
            t.as_u16(),
            Err(StoreError::DTypeMismatch {
                expected: DType::U16,
                found: DType::F32
            })
        ));
        assert!(matches!(
            t.clone().into_u16(),
            Err(StoreError::DTypeMismatch { .. })
        ));
        t.expect_shape("k", &[4, 3, 2]).unwrap();
        let err = t.expect_shape("q:1:act", &[4, 6]).unwrap_err();
        assert!(matches!(err, StoreError::ShapeMismatch { .. }));
        let msg = err.to_string();
        assert!(msg.contains("q:1:act") && msg.contains("[4, 3, 2]") && msg.contains("[4, 6]"));
    }

    #[test]
    fn truncated_blobs_are_corrupt() {
        let blob = sample_f32().encode();
        assert!(is_corrupt(StoredTensor::decode(&blob[..10]), "truncated"));
        assert!(is_corrupt(StoredTensor::decode(&[]), "truncated"));
        assert!(is_corrupt(
            StoredTensor::decode(&blob[..blob.len() - 1]),
            "payload is"
        ));
        let mut longer = blob.clone();
        longer.push(0);
        assert!(is_corrupt(StoredTensor::decode(&longer), "payload is"));
    }

    #[test]
    fn flipped_payload_bit_fails_the_payload_crc() {
        let mut blob = sample_f32().encode();
        blob[HEADER_LEN + 17] ^= 0x04;
        assert!(is_corrupt(StoredTensor::decode(&blob), "payload CRC"));
    }

    #[test]
    fn flipped_header_bits_fail_the_header_crc() {
        let clean = sample_f32().encode();
        // Every bit of every header field other than magic and version.
        for byte in 5..HEADER_CRC_AT {
            for bit in 0..8 {
                let mut blob = clean.clone();
                blob[byte] ^= 1 << bit;
                assert!(
                    is_corrupt(StoredTensor::decode(&blob), "header CRC"),
                    "byte {byte} bit {bit}"
                );
            }
        }
        let mut blob = clean;
        blob[HEADER_CRC_AT + 1] ^= 0x80;
        assert!(is_corrupt(StoredTensor::decode(&blob), "header CRC"));
    }

    #[test]
    fn foreign_bytes_are_not_a_tensor() {
        assert!(is_corrupt(
            StoredTensor::decode(b"hello, this is a plain string that someone SET here"),
            "not a seqless tensor"
        ));
        let mut blob = sample_f32().encode();
        blob[0] = b'X';
        assert!(is_corrupt(
            StoredTensor::decode(&blob),
            "not a seqless tensor"
        ));
        let mut blob = sample_f32().encode();
        blob[4] = 2;
        assert!(is_corrupt(StoredTensor::decode(&blob), "version 2"));
    }

    /// Re-seals a hand-edited header so the field checks behind the CRC are reached.
    fn reseal(blob: &mut [u8]) {
        let crc = crc32fast::hash(&blob[..HEADER_CRC_AT]);
        blob[HEADER_CRC_AT..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn header_fields_are_checked_behind_a_valid_crc() {
        let clean = sample_f32().encode();
        let cases: [(usize, u8, &str); 3] = [
            (5, 9, "unknown dtype"),
            (6, 5, "ndim 5"),
            (7, 1, "reserved"),
        ];
        for (at, value, needle) in cases {
            let mut blob = clean.clone();
            blob[at] = value;
            reseal(&mut blob);
            assert!(is_corrupt(StoredTensor::decode(&blob), needle), "{needle}");
        }
        let mut blob = clean.clone();
        blob[32] = 1; // unused fourth dim
        reseal(&mut blob);
        assert!(is_corrupt(StoredTensor::decode(&blob), "unused dimension"));
        let mut blob = clean;
        blob[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        reseal(&mut blob);
        assert!(StoredTensor::decode(&blob).is_err());
    }

    #[test]
    fn row_spans_are_computed_from_the_header() {
        let t = sample_f32();
        let blob = t.encode();
        let header = Header::parse("k", &blob).unwrap();
        let span = header.row_span("k", 1..3).unwrap();
        assert_eq!(span.offset, HEADER_LEN + 6 * 4);
        assert_eq!(span.len, 2 * 6 * 4);
        assert_eq!(span.shape, vec![2, 3, 2]);

        let (rows, bytes) = rows_from_blob("k", &blob, 1..3).unwrap();
        assert_eq!(rows.shape(), &[2, 3, 2]);
        assert_eq!(rows.as_f32().unwrap(), &t.as_f32().unwrap()[6..18]);
        assert_eq!(bytes, (HEADER_LEN + 48) as u64);

        let (all, _) = rows_from_blob("k", &blob, 0..4).unwrap();
        assert_eq!(all, t);
        let (none, _) = rows_from_blob("k", &blob, 4..4).unwrap();
        assert_eq!(none.shape(), &[0, 3, 2]);
    }

    #[test]
    fn out_of_bounds_row_ranges_are_refused() {
        let blob = sample_f32().encode();
        for range in [3..5, 5..5, 0..usize::MAX] {
            let err = rows_from_blob("q:x:act", &blob, range.clone()).unwrap_err();
            assert!(
                matches!(err, StoreError::RowRange { rows: 4, .. }),
                "{range:?}: {err}"
            );
            assert!(err.to_string().contains("q:x:act"));
        }
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 3..1;
        assert!(matches!(
            rows_from_blob("k", &blob, backwards),
            Err(StoreError::RowRange { .. })
        ));
    }

    #[test]
    fn row_reads_of_a_scalar_and_of_u16() {
        let s = StoredTensor::f32(vec![], vec![2.0]).unwrap();
        let (one, _) = rows_from_blob("s", &s.encode(), 0..1).unwrap();
        assert_eq!(one.shape(), &[1]);
        let u = StoredTensor::u16(vec![6], (1..=6).collect()).unwrap();
        let (mid, bytes) = rows_from_blob("u", &u.encode(), 2..5).unwrap();
        assert_eq!(mid.as_u16().unwrap(), &[3, 4, 5]);
        assert_eq!(bytes, (HEADER_LEN + 6) as u64);
    }

    #[test]
    fn row_reads_check_the_header_too() {
        let mut blob = sample_f32().encode();
        blob[9] ^= 1;
        assert!(matches!(
            rows_from_blob("k", &blob, 0..1),
            Err(StoreError::Corrupt { .. })
        ));
        let blob = sample_f32().encode();
        assert!(matches!(
            rows_from_blob("k", &blob[..blob.len() - 4], 0..1),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
