//! Standard output that a closed pipe ends quietly. `println!` panics when the reader has gone
//! (`zta audit query | head`); these return the error instead, and `main` exits with status
//! 141 and no message, as a process that SIGPIPE ended would.

use std::io::{self, Write};

/// `println!` that returns the write error (use with `?`).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that returns the write error (use with `?`).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))
    };
}

/// Writes `text` to standard output and flushes it (output is read as it comes: `tail --follow`).
pub(crate) fn write(text: std::fmt::Arguments<'_>) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_fmt(text)?;
    stdout.flush()
}

/// The exit status for a command that stopped because its output pipe closed.
pub(crate) const CLOSED_PIPE: u8 = 141;

/// Whether `e` is standard output's reader having gone away.
pub(crate) fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
