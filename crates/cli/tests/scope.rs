//! The scope rule, walked over the whole command tree: every scoped flag against every
//! setting of the flags that select it.

use clap::{Command, Id};
use seqless::cli::{Needs, SCOPES};
use seqless::scope::{built_command, check, group_args};

/// A value clap accepts for the argument: its default, else its first possible value,
/// else the first of a number (1, or 2 where a count has a floor, as `--function-slots`)
/// or a URL that its parser takes.
fn value_for(arg: &clap::Arg) -> String {
    if let Some(default) = arg.get_default_values().first() {
        return default.to_string_lossy().into_owned();
    }
    if let Some(first) = arg.get_possible_values().first() {
        return first.get_name().to_owned();
    }
    let long = format!("--{}", arg.get_long().unwrap_or_default());
    ["1", "2", "http://127.0.0.1:9000"]
        .into_iter()
        .find(|v| {
            // Alone in the probe, so without the conflicts that name its neighbours.
            Command::new("probe")
                .arg(
                    arg.clone()
                        .required(false)
                        .conflicts_with(clap::builder::Resettable::<Id>::Reset),
                )
                .try_get_matches_from(["probe", long.as_str(), v])
                .is_ok()
        })
        .unwrap_or_else(|| panic!("no test value for --{:?}", arg.get_long()))
        .to_owned()
}

/// The command line that sets `arg` to a value (or, for a switch, sets it).
fn set(arg: &clap::Arg, value: &str) -> Vec<String> {
    let takes_value = arg.get_action().takes_values();
    match arg.get_long() {
        Some(long) if takes_value => vec![format!("--{long}"), value.to_owned()],
        Some(long) => vec![format!("--{long}")],
        None => vec![value.to_owned()],
    }
}

/// Every leaf subcommand, with the names that lead to it.
fn leaves(command: &Command, path: &[String], out: &mut Vec<(Vec<String>, Command)>) {
    let mut subs = command.get_subcommands().peekable();
    if subs.peek().is_none() {
        out.push((path.to_vec(), command.clone()));
    }
    for sub in subs {
        let mut next = path.to_vec();
        next.push(sub.get_name().to_owned());
        leaves(sub, &next, out);
    }
}

/// Every setting of the selecting flags of a command: each value of a flag that scopes
/// by value, and given or not for one that scopes by presence (unless required).
fn settings(command: &Command) -> Vec<Vec<(String, Option<String>)>> {
    let mut selectors: Vec<&str> = SCOPES
        .iter()
        .filter(|s| command.get_groups().any(|g| g.get_id() == s.group))
        .map(|s| s.flag)
        .filter(|flag| command.get_arguments().any(|a| a.get_id() == *flag))
        .collect();
    selectors.dedup();
    selectors.sort_unstable();
    selectors.dedup();
    let mut all = vec![Vec::new()];
    for flag in selectors {
        let arg = command
            .get_arguments()
            .find(|a| a.get_id() == flag)
            .unwrap();
        let mut options: Vec<Option<String>> = if arg.get_possible_values().is_empty() {
            vec![Some(value_for(arg))]
        } else {
            arg.get_possible_values()
                .iter()
                .map(|v| Some(v.get_name().to_owned()))
                .collect()
        };
        if !arg.is_required_set() && arg.get_default_values().is_empty() {
            options.push(None);
        }
        all = all
            .into_iter()
            .flat_map(|setting: Vec<(String, Option<String>)>| {
                options.iter().map(move |option| {
                    let mut next = setting.clone();
                    next.push((flag.to_owned(), option.clone()));
                    next
                })
            })
            .collect();
    }
    all
}

/// Whether a scope holds under a setting of the selecting flags.
fn holds(needs: Needs, setting: Option<&Option<String>>) -> bool {
    match (needs, setting) {
        (Needs::Given, Some(Some(_))) => true,
        (Needs::Given, _) => false,
        (Needs::OneOf(values), Some(Some(value))) => values.contains(&value.as_str()),
        (Needs::OneOf(_), _) => true,
    }
}

/// Every flag of every scoped group, in every command that has the group, against every
/// setting of the flags that select it: refused, naming itself, exactly where one of its
/// scopes does not hold.
#[test]
fn every_scoped_flag_is_refused_exactly_where_it_has_no_effect() {
    let root = built_command();
    let mut commands = Vec::new();
    leaves(&root, &[], &mut commands);
    let mut refused = std::collections::BTreeSet::new();
    let mut cases = 0;
    for (path, command) in &commands {
        let scoped: Vec<Id> = SCOPES
            .iter()
            .flat_map(|s| group_args(command, s.group))
            .collect();
        for id in &scoped {
            let arg = command.get_arguments().find(|a| a.get_id() == id).unwrap();
            for setting in settings(command) {
                if setting.iter().any(|(flag, _)| flag == id.as_str()) {
                    continue;
                }
                let mut argv = vec!["seqless".to_owned()];
                argv.extend(path.iter().cloned());
                for required in command.get_arguments().filter(|a| a.is_required_set()) {
                    if !setting.iter().any(|(f, _)| f == required.get_id().as_str()) {
                        argv.extend(set(required, &value_for(required)));
                    }
                }
                // Selectors set away from their defaults; a scoped selector (such as
                // --platform) may then be refused itself.
                let mut given_selectors = Vec::new();
                for (flag, value) in &setting {
                    let selector = command
                        .get_arguments()
                        .find(|a| a.get_id() == flag)
                        .unwrap();
                    let is_default = selector
                        .get_default_values()
                        .first()
                        .is_some_and(|d| Some(d.to_string_lossy().as_ref()) == value.as_deref());
                    if let Some(value) = value
                        && !is_default
                    {
                        argv.extend(set(selector, value));
                        given_selectors.push(format!("--{}", selector.get_long().unwrap()));
                    }
                }
                argv.extend(set(arg, &value_for(arg)));
                let matches = match root.clone().try_get_matches_from(&argv) {
                    Ok(matches) => matches,
                    // Flags that exclude each other (--plan-calibration and --plan) are
                    // refused by the parser, naming both, before any scope applies.
                    Err(e) if e.kind() == clap::error::ErrorKind::ArgumentConflict => continue,
                    Err(e) => panic!("{argv:?}: {e}"),
                };
                let expect_ok = SCOPES
                    .iter()
                    .filter(|s| group_args(command, s.group).contains(id))
                    .filter(|s| command.get_arguments().any(|a| a.get_id() == s.flag))
                    .all(|s| {
                        holds(
                            s.needs,
                            setting.iter().find(|(f, _)| f == s.flag).map(|(_, v)| v),
                        )
                    });
                let long = format!("--{}", arg.get_long().unwrap());
                match check(&root, &matches) {
                    Ok(()) => assert!(expect_ok, "{argv:?} was accepted"),
                    Err(message) => {
                        let selector_refused = given_selectors
                            .iter()
                            .any(|g| message.starts_with(&format!("{g} ")));
                        assert!(
                            !expect_ok || selector_refused,
                            "{argv:?} was refused: {message}"
                        );
                        if message.starts_with(&format!("{long} ")) {
                            refused.insert(format!("{} {long}", path.join(" ")));
                        } else {
                            assert!(selector_refused, "{argv:?}: {message}");
                        }
                    }
                }
                cases += 1;
            }
        }
    }
    // The walk reached the commands that take execution flags.
    for expected in [
        "classify --store",
        "classify --splits",
        "serve --transfer",
        "serve --endpoint",
        "bench calibrate --region",
        "simulate --memory-mb",
    ] {
        assert!(
            refused.contains(expected),
            "{expected} never refused: {refused:?}"
        );
    }
    assert!(cases > 100, "{cases} cases");
}

#[test]
fn a_flag_given_in_the_mode_that_uses_it_passes() {
    let root = built_command();
    let matches = root
        .clone()
        .try_get_matches_from([
            "seqless",
            "classify",
            "--model",
            "m",
            "--mode",
            "serverless",
            "--platform",
            "lambda",
            "--region",
            "eu-west-1",
            "--splits",
            "2",
            "hi",
        ])
        .unwrap();
    assert_eq!(check(&root, &matches), Ok(()));
    let matches = root
        .clone()
        .try_get_matches_from(["seqless", "classify", "--model", "m", "--splits", "2", "hi"])
        .unwrap();
    assert_eq!(
        check(&root, &matches).unwrap_err(),
        "--splits has an effect only with --mode serverless (it is --mode monolithic); add --mode serverless or drop --splits"
    );
}
