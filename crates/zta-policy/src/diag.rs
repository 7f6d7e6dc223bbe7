//! Diagnostics (load errors and analysis warnings) and the crate's error type.

use std::{fmt, path::PathBuf};

use serde::Serialize;

use crate::source::Pos;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The policy cannot be loaded.
    Error,
    /// The policy loads, but a rule can never decide or repeats another.
    Warning,
}

/// One finding about a policy file, with where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file (as given to the loader).
    pub file: String,
    /// 1-based line; 0 when unknown.
    pub line: u32,
    /// 1-based column; 0 when unknown.
    pub column: u32,
    /// The rule concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub(crate) fn new(severity: Severity, file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Self {
            severity,
            file: file.to_owned(),
            line: pos.line,
            column: pos.col,
            rule: None,
            message: message.into(),
            hint: None,
        }
    }

    /// A document that could not be read at all, as an error in `file`.
    pub(crate) fn syntax(file: &str, e: zta_source::SyntaxError) -> Self {
        let d = Self::new(Severity::Error, file, e.pos, e.message);
        match e.hint {
            Some(hint) => d.with_hint(hint),
            None => d,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn with_rule(mut self, rule: Option<&str>) -> Self {
        if self.rule.is_none() {
            self.rule = rule.map(str::to_owned);
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {kind}: {}", self.message)?;
        if let Some(rule) = &self.rule {
            write!(f, " (rule `{rule}`)")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// All the errors found in a policy that failed to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "policy has {n} error{}", if n == 1 { "" } else { "s" })?;
        for d in &self.0 {
            write!(f, "\n{d}")?;
        }
        Ok(())
    }
}

/// Why a policy could not be loaded, a request could not be built, or a watcher started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A policy or test file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The policy is invalid; every error found is listed, with positions and hints.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// No policy file was given.
    #[error("no policy files given")]
    NoFiles,
    /// A request attribute tree could not be turned into a request.
    #[error("invalid request: {0}")]
    Request(String),
    /// A test-case file is malformed.
    #[error("invalid test file `{path}`: {message}")]
    TestFile {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The file watcher could not be started.
    #[error("cannot watch policy files: {0}")]
    Watch(String),
    /// A policy file changed between every two of its reads: it is still being written, and no
    /// version of it is loaded.
    #[error(
        "`{path}` kept changing while it was read ({reads} reads, {interval_ms} ms apart); a file still being written is not loaded"
    )]
    Unsettled {
        /// The file.
        path: PathBuf,
        /// How many times it was read.
        reads: u32,
        /// The pause between two reads.
        interval_ms: u64,
    },
}

impl Error {
    /// The diagnostics of an [`Error::Invalid`], else none.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Self::Invalid(d) => &d.0,
            _ => &[],
        }
    }
}
