//! The `seqless` command line: its clap types ([`cli`]), the rule that refuses a flag
//! where it would have no effect ([`scope`]), and one module per subcommand
//! ([`commands`]). The binary parses, checks the scope, and calls [`commands::run`]; the
//! library form lets integration tests walk the command tree the binary parses with.

pub mod cli;
pub mod commands;
pub mod scope;
