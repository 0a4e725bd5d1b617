//! Enforces [`crate::cli::SCOPES`]: a flag given where its setting makes it have no effect
//! is refused, naming the flag and the setting it needs.

use clap::parser::ValueSource;
use clap::{ArgMatches, Command, Id};

use crate::cli::{Needs, SCOPES};

/// The command tree, built: an argument's own `group = ...` joins its group only when the
/// command is built, and the scope rule reads group membership.
pub fn built_command() -> Command {
    let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
    command.build();
    command
}

/// Checks the subcommand that ran against every scope; the first broken one is the error.
/// `command` must be built ([`built_command`]).
pub fn check(command: &Command, matches: &ArgMatches) -> Result<(), String> {
    if let Some((name, sub_matches)) = matches.subcommand() {
        let sub = command
            .find_subcommand(name)
            .expect("clap matched a subcommand it declares");
        return check(sub, sub_matches);
    }
    for scope in SCOPES {
        let Some(selector) = command.get_arguments().find(|a| a.get_id() == scope.flag) else {
            continue;
        };
        if satisfied(scope.needs, matches, scope.flag) {
            continue;
        }
        if let Some(flag) = group_args(command, scope.group)
            .into_iter()
            .find(|id| given(matches, id.as_str()))
        {
            let selector_name = format!("--{}", selector.get_long().unwrap_or(scope.flag));
            let need = match scope.needs {
                Needs::OneOf(values) => format!("{selector_name} {}", values.join(" or ")),
                Needs::Given => selector_name.clone(),
            };
            let now = match matches.get_raw(scope.flag).and_then(|mut v| v.next()) {
                Some(value) => format!(" (it is {selector_name} {})", value.to_string_lossy()),
                None => String::new(),
            };
            let flag = command
                .get_arguments()
                .find(|a| a.get_id() == &flag)
                .and_then(|a| a.get_long())
                .map_or_else(|| flag.to_string(), |long| format!("--{long}"));
            return Err(format!(
                "{flag} has an effect only with {need}{now}; add {need} or drop {flag}"
            ));
        }
    }
    Ok(())
}

/// Whether the selecting flag's setting lets the scoped group take effect.
fn satisfied(needs: Needs, matches: &ArgMatches, flag: &str) -> bool {
    match needs {
        Needs::Given => given(matches, flag),
        Needs::OneOf(values) => matches
            .get_raw(flag)
            .into_iter()
            .flatten()
            .any(|v| values.iter().any(|allowed| v == *allowed)),
    }
}

/// Whether the user set the flag (on the command line or through its environment variable),
/// as opposed to its default.
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// The argument ids of a group, with the members of nested groups.
pub fn group_args(command: &Command, group: &str) -> Vec<Id> {
    let Some(found) = command.get_groups().find(|g| g.get_id() == group) else {
        return Vec::new();
    };
    found
        .get_args()
        .flat_map(|member| {
            if command.get_groups().any(|g| g.get_id() == member) {
                group_args(command, member.as_str())
            } else {
                vec![member.clone()]
            }
        })
        .collect()
}
