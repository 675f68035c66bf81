//! `engine check-rules`: checks a rules file as the engine does at start,
//! so a user can develop rules quickly. Running a rule on a page needs an
//! HTML parser and a fetcher, which the engine does not link: that is
//! `worker try-rules` (and `worker check-rules` checks selectors too).

use std::fmt::Write as _;
use std::path::Path;

use rpcsupport::rules::{parse_file, Builtins, RuleError, Rules};
use thiserror::Error;

/// What `engine try-rules` says instead of running.
pub const TRY_RULES_MOVED: &str = "try-rules runs a rule on a page, which needs the worker's HTML parser and fetcher: run `worker try-rules FILE PAGE [--parser P] [--base URL]` instead";

/// Why a tool could not do its job.
#[derive(Debug, Error)]
pub enum ToolError {
    /// The rules file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The rules file has a mistake.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// The tool is the worker's now.
    #[error("{TRY_RULES_MOVED}")]
    TryRulesMoved,
}

/// Checks the rules file as the engine does at start (everything but CSS
/// selector syntax and the names of parsers outside the file, which the
/// workers check) and describes it: every parser, what it follows and what
/// it extracts.
pub fn check_rules(path: &Path) -> Result<String, ToolError> {
    let text = std::fs::read_to_string(path).map_err(|source| ToolError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let rules = Rules::check(parse_file(&text)?, Builtins::Unchecked)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: ok, {} parsers (rule set {})",
        path.display(),
        rules.file().parsers.len(),
        rules.id()
    );
    let _ = writeln!(
        out,
        "not checked here: CSS selectors (`worker check-rules {}` compiles them; workers refuse rules they cannot compile when a crawl starts)",
        path.display()
    );
    let outside = rules.outside_parsers();
    if !outside.is_empty() {
        let names: Vec<&str> = outside.into_iter().collect();
        let _ = writeln!(
            out,
            "parsers outside the file, which the workers must have: {}",
            names.join(", ")
        );
    }
    out.push_str(&rules.describe());
    Ok(out)
}
