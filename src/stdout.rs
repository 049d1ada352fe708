//! What the command-line tools (`check`, `routes`, `openapi import|export`) print on
//! stdout, written so that a failed write is said and fails the command: `portico openapi
//! import spec.yaml > full-disk/portico.yaml` exited 0 with the file cut short or empty,
//! and a script went on with it. What they say on stderr (errors, warnings) goes through
//! [`say`], which never panics.

use std::io::Write;
use std::process::ExitCode;

/// Writes `text` to stdout and flushes it. A reader that went away (`… | head`) is not
/// an error: it has what it wanted. Any other failure (a full disk, `> /dev/full`, a
/// closed stdout) is said on stderr, and the exit code is 1.
pub fn write(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    // Flushed here, not when the lock drops: the error of a flush on drop is lost.
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            say(&format!("portico: writing output: {e}"));
            ExitCode::from(1)
        }
    }
}

/// Writes `line` and a newline to stderr. A stderr that can't be written (a pipe whose
/// reader left, `2>/dev/full`) loses the line and nothing else: `eprintln!` panicked
/// there, and `check` of a valid config with warnings (`check … 2>&1 | head -1`) exited
/// 101 instead of 0. The exit code stays the command's verdict.
pub fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    // One write for the line and its newline, so lines of two threads don't interleave.
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let _ = err.write_all(text.as_bytes());
}

/// `eprintln!` through [`say`]: never panics.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::stdout::say(&format!($($arg)*))
    };
}
