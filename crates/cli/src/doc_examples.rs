//! Every `seqless` command in the README's and the docs' shell blocks parses as written and
//! passes the scope rule, so a renamed or removed flag cannot linger in an example.

/// The documents whose shell examples are checked, by path from the workspace root.
const DOCUMENTS: &[(&str, &str)] = &[
    ("README.md", include_str!("../../../README.md")),
    ("docs/serve.md", include_str!("../../../docs/serve.md")),
    (
        "docs/platform.md",
        include_str!("../../../docs/platform.md"),
    ),
    ("docs/lambda.md", include_str!("../../../docs/lambda.md")),
    ("docs/results.md", include_str!("../../../docs/results.md")),
    (
        "docs/simulator.md",
        include_str!("../../../docs/simulator.md"),
    ),
    ("docs/langid.md", include_str!("../../../docs/langid.md")),
];

/// The `seqless` commands of a Markdown document's `sh` blocks, continuation lines joined,
/// comments and a leading `VAR=value` dropped.
fn commands(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let line = line.split(" #").next().unwrap_or_default().trim_end();
        pending.push_str(line.trim_start());
        if let Some(joined) = pending.strip_suffix('\\') {
            pending = format!("{} ", joined.trim_end());
            continue;
        }
        let command = std::mem::take(&mut pending);
        let command = command.trim_end_matches('&').trim();
        let mut command = command;
        while let Some((env, rest)) = command.split_once(' ')
            && env.contains('=')
            && !env.starts_with('-')
        {
            command = rest;
        }
        if command.starts_with("seqless ") {
            out.push(command.to_owned());
        }
    }
    out
}

/// Splits words and double- or single-quoted strings (all the examples use).
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match (c, quote) {
            ('"' | '\'', None) => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (c, Some(q)) if c == q => quote = None,
            (' ', None) => words.extend(word.take()),
            (c, _) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[test]
fn every_documented_command_parses_and_passes_the_scope_rule() {
    let root = crate::scope::built_command();
    let mut checked = 0;
    for (document, text) in DOCUMENTS {
        for command in commands(text) {
            let argv = words(&command);
            // Commands behind a feature this build leaves out are checked in a build with
            // it; `seqless --version` has no subcommand to check.
            if root.find_subcommand(&argv[1]).is_none() {
                continue;
            }
            let matches = root
                .clone()
                .try_get_matches_from(&argv)
                .unwrap_or_else(|e| panic!("{document}: {command}\n{e}"));
            if let Err(refusal) = crate::scope::check(&root, &matches) {
                panic!("{document}: {command}\n{refusal}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} commands found");
}
