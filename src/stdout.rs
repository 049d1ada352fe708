//! What the command-line tools (`check`, `routes`, `openapi import|export`) print on
//! stdout, written so that a failed write is said and fails the command: `portico openapi
//! import spec.yaml > full-disk/portico.yaml` exited 0 with the file cut short or empty,
//! and a script went on with it.

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
            eprintln!("portico: writing output: {e}");
            ExitCode::from(1)
        }
    }
}
