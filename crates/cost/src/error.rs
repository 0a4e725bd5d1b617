use std::path::PathBuf;

/// Every way pricing input or a cost model can be refused, so that a caller (the
/// CLI, the simulator) can tell the user exactly which file, key or field to fix. A wrapped
/// error is part of the message, not also a `source`, so a printed chain says it once.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    /// The pricing file could not be read at all.
    #[error("cannot read pricing file {}: {cause}", path.display())]
    Io {
        /// The file that was asked for.
        path: PathBuf,
        /// The underlying I/O failure.
        cause: std::io::Error,
    },
    /// The pricing text is not valid TOML for [`crate::Pricing`]: a syntax error,
    /// a missing or unknown key, or a wrong type. The TOML error names the line,
    /// column and key.
    #[error("invalid pricing in {origin}: {cause}")]
    Parse {
        /// The file path, or `<string>` for text given directly.
        origin: String,
        /// The parser's message, with line and key.
        cause: toml::de::Error,
    },
    /// A price is negative, NaN or infinite; such a price would silently turn a
    /// cost into nonsense, so it is refused at load.
    #[error("invalid pricing in {origin}: `{key}` = {value}; a price must be a finite number >= 0")]
    BadPrice {
        /// The file path, or `<string>`.
        origin: String,
        /// The dotted key of the offending price.
        key: String,
        /// The value found.
        value: f64,
    },
    /// An instance type was asked for that the price list does not have.
    #[error(
        "no hourly price for instance `{name}`; known: {known}; add it under [instances] in a pricing file"
    )]
    UnknownInstance {
        /// The instance name asked for.
        name: String,
        /// The names the price list has, comma separated.
        known: String,
    },
    /// A cost model input is out of range (negative count, fraction above 1, ...).
    #[error("invalid cost input: `{field}` {reason}")]
    InvalidInput {
        /// The field at fault.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Command-line flags that contradict each other; the message names them.
    #[error("{0}")]
    Flags(String),
    /// A flag's value could not be priced; the message names the flag and the cause.
    #[error("{flag}: {cause}")]
    InFlag {
        /// The flag, such as `--master`.
        flag: String,
        /// Why its value was refused.
        cause: Box<CostError>,
    },
}

impl CostError {
    /// Whether the caller can fix this by changing what it gave (a price file, an instance
    /// name, a figure, a flag) rather than it being the machine's fault: a price file that
    /// is not there is the caller's to fix, one that cannot be read is not.
    pub fn caller_can_fix(&self) -> bool {
        match self {
            Self::Io { cause, .. } => cause.kind() == std::io::ErrorKind::NotFound,
            Self::InFlag { cause, .. } => cause.caller_can_fix(),
            _ => true,
        }
    }
}
