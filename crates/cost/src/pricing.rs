use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CostError;

/// The shipped price list. It is the single source of the defaults: both
/// [`Pricing::default`] and a user who copies the file start from the same text,
/// so the documented and the applied prices cannot drift apart.
pub const DEFAULT_PRICING_TOML: &str = include_str!("../pricing.default.toml");

/// The CPU architecture of a Lambda function. It matters because AWS bills
/// arm64 (Graviton) duration about 20% cheaper than x86_64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Arch {
    /// Intel/AMD, Lambda's default architecture.
    #[default]
    #[serde(rename = "x86_64")]
    #[cfg_attr(feature = "clap", value(name = "x86_64"))]
    X86_64,
    /// AWS Graviton.
    #[serde(rename = "arm64")]
    #[cfg_attr(feature = "clap", value(name = "arm64"))]
    Arm64,
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        })
    }
}

impl FromStr for Arch {
    type Err = CostError;

    /// Accepts the names Lambda itself uses (`x86_64`, `arm64`), so a CLI flag
    /// can pass them straight through.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "x86_64" => Ok(Arch::X86_64),
            "arm64" => Ok(Arch::Arm64),
            other => Err(CostError::InvalidInput {
                field: "arch".into(),
                reason: format!("is `{other}`; expected `x86_64` or `arm64`"),
            }),
        }
    }
}

/// A price list. Kept as data, not constants, because prices change and differ
/// by region; a user overrides them with a TOML file of the same shape as
/// [`DEFAULT_PRICING_TOML`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// The AWS region the prices are for, for the reader of a report.
    pub region: String,
    /// When the prices were taken, so a report shows how old its figures are.
    pub prices_as_of: String,
    /// AWS Lambda charges.
    pub lambda: LambdaPricing,
    /// Data transfer charges that apply to store traffic.
    pub data_transfer: DataTransferPricing,
    /// On-demand USD per hour by instance type (EC2 and ElastiCache node types),
    /// looked up by name with [`Pricing::hourly`].
    pub instances: BTreeMap<String, f64>,
}

/// What Lambda bills: a fee per request plus memory × time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaPricing {
    /// USD per one million invocations.
    pub request_usd_per_million: f64,
    /// USD per GB-second on x86_64 (first tier).
    pub duration_usd_per_gb_second_x86_64: f64,
    /// USD per GB-second on arm64 (first tier).
    pub duration_usd_per_gb_second_arm64: f64,
    /// Whether a cold start's INIT phase is billed as duration. A switch because
    /// AWS changed this on 2025-08-01 and older estimates (the paper's era)
    /// assumed it free for managed runtimes.
    pub bill_init: bool,
}

impl LambdaPricing {
    /// The duration price for `arch`, so callers need not match on it.
    pub fn gb_second_usd(&self, arch: Arch) -> f64 {
        match arch {
            Arch::X86_64 => self.duration_usd_per_gb_second_x86_64,
            Arch::Arm64 => self.duration_usd_per_gb_second_arm64,
        }
    }

    /// The fee for one invocation, so per-request arithmetic is written once.
    pub fn request_usd(&self) -> f64 {
        self.request_usd_per_million / 1e6
    }
}

/// Data transfer prices: the only way store traffic can cost money, since
/// ElastiCache has no per-request charge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataTransferPricing {
    /// USD per GB for traffic between Availability Zones of one region.
    pub inter_az_usd_per_gb: f64,
}

impl Default for Pricing {
    /// The shipped `pricing.default.toml`. A test proves it parses, so this
    /// cannot fail at run time.
    fn default() -> Self {
        Pricing::parse(DEFAULT_PRICING_TOML, "pricing.default.toml")
            .expect("the embedded pricing.default.toml is valid (checked by a unit test)")
    }
}

impl Pricing {
    /// Parses a price list given as text (for example from a CLI argument or a
    /// test). Errors say `<string>` where a file error would name the file.
    pub fn from_toml_str(text: &str) -> Result<Self, CostError> {
        Pricing::parse(text, "<string>")
    }

    /// Reads and parses a pricing file; errors name the file and, from the TOML
    /// parser, the line and key.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CostError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|cause| CostError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        Pricing::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Self, CostError> {
        let pricing: Pricing = toml::from_str(text).map_err(|cause| CostError::Parse {
            origin: origin.to_string(),
            cause,
        })?;
        pricing.validate(origin)?;
        Ok(pricing)
    }

    fn validate(&self, origin: &str) -> Result<(), CostError> {
        let l = &self.lambda;
        let named = [
            ("lambda.request_usd_per_million", l.request_usd_per_million),
            (
                "lambda.duration_usd_per_gb_second_x86_64",
                l.duration_usd_per_gb_second_x86_64,
            ),
            (
                "lambda.duration_usd_per_gb_second_arm64",
                l.duration_usd_per_gb_second_arm64,
            ),
            (
                "data_transfer.inter_az_usd_per_gb",
                self.data_transfer.inter_az_usd_per_gb,
            ),
        ];
        let instances = self
            .instances
            .iter()
            .map(|(name, &usd)| (format!("instances.\"{name}\""), usd));
        for (key, value) in named
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain(instances)
        {
            if !(value.is_finite() && value >= 0.0) {
                return Err(CostError::BadPrice {
                    origin: origin.to_string(),
                    key,
                    value,
                });
            }
        }
        Ok(())
    }

    /// The prices in `path`, or the embedded defaults where no file is given.
    pub fn load_or_default(path: Option<&Path>) -> Result<Self, CostError> {
        path.map_or_else(|| Ok(Self::default()), Self::load)
    }

    /// The summed hourly price of charges written `NAME[:COUNT]` (count 1 if absent), each
    /// priced by name, as `seqless cost --hourly` takes them.
    pub fn hourly_charges(&self, specs: &[String]) -> Result<f64, CostError> {
        specs.iter().try_fold(0.0, |sum, spec| {
            let (name, count) = match spec.split_once(':') {
                Some((name, count)) => {
                    let count = count
                        .parse::<f64>()
                        .ok()
                        .filter(|c| c.is_finite() && *c >= 0.0)
                        .ok_or_else(|| CostError::InvalidInput {
                            field: format!("hourly charge {spec:?}"),
                            reason: format!("count {count:?} is not a number >= 0"),
                        })?;
                    (name, count)
                }
                None => (spec.as_str(), 1.0),
            };
            Ok(sum + self.hourly(name)? * count)
        })
    }

    /// The hourly price of an instance type by name, refusing unknown names
    /// rather than guessing, because a wrong instance price silently skews every
    /// comparison.
    pub fn hourly(&self, name: &str) -> Result<f64, CostError> {
        self.instances
            .get(name)
            .copied()
            .ok_or_else(|| CostError::UnknownInstance {
                name: name.to_string(),
                known: self
                    .instances
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses_with_the_published_prices() {
        let p = Pricing::from_toml_str(DEFAULT_PRICING_TOML).unwrap();
        assert_eq!(p, Pricing::default());
        assert_eq!(p.region, "us-east-1");
        assert_eq!(p.lambda.request_usd_per_million, 0.20);
        assert_eq!(p.lambda.gb_second_usd(Arch::X86_64), 0.0000166667);
        assert_eq!(p.lambda.gb_second_usd(Arch::Arm64), 0.0000133334);
        assert!(p.lambda.bill_init);
        assert_eq!(p.hourly("p2.xlarge").unwrap(), 0.90);
        assert_eq!(p.hourly("paper-master").unwrap(), 0.188);
        assert_eq!(p.hourly("cache.m5.large").unwrap(), 0.156);
    }

    #[test]
    fn unknown_key_is_refused_by_name() {
        let text =
            DEFAULT_PRICING_TOML.replace("bill_init = true", "bill_init = true\nbil_init = false");
        let err = Pricing::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("bil_init"), "{err}");
        assert!(err.contains("<string>"), "{err}");
    }

    #[test]
    fn missing_key_is_refused_by_name() {
        let text = DEFAULT_PRICING_TOML.replace("inter_az_usd_per_gb = 0.01", "");
        let err = Pricing::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("inter_az_usd_per_gb"), "{err}");
    }

    #[test]
    fn negative_and_nan_prices_are_refused_by_key() {
        let text = DEFAULT_PRICING_TOML.replace("\"p2.xlarge\" = 0.90", "\"p2.xlarge\" = -0.90");
        let err = Pricing::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("instances.\"p2.xlarge\""), "{err}");
        let text = DEFAULT_PRICING_TOML.replace(
            "request_usd_per_million = 0.20",
            "request_usd_per_million = nan",
        );
        let err = Pricing::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("lambda.request_usd_per_million"), "{err}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.toml");
        std::fs::write(&path, "region = 3\n").unwrap();
        let err = Pricing::load(&path).unwrap_err().to_string();
        assert!(err.contains("prices.toml"), "{err}");
        assert!(err.contains("line 1"), "{err}");
        let missing = Pricing::load(dir.path().join("absent.toml"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("absent.toml"), "{missing}");
    }

    #[test]
    fn unknown_instance_lists_known_ones() {
        let err = Pricing::default()
            .hourly("p9.huge")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("p9.huge") && err.contains("p2.xlarge"),
            "{err}"
        );
    }

    #[test]
    fn arch_round_trips_through_its_lambda_name() {
        for arch in [Arch::X86_64, Arch::Arm64] {
            assert_eq!(arch.to_string().parse::<Arch>().unwrap(), arch);
        }
        assert!("aarch64".parse::<Arch>().is_err());
    }
}
