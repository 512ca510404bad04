//! Reading a password from the person at the keyboard, or from a pipe.

use std::io::{self, BufRead, Write};

/// A password from stdin: typed at a terminal (twice, without echo), or the
/// first line of whatever stdin is (a pipe, a file).
pub(crate) fn read_password(prompt: &str) -> io::Result<Vec<u8>> {
    // SAFETY: isatty only looks at the descriptor.
    if unsafe { libc::isatty(libc::STDIN_FILENO) } == 0 {
        return read_line();
    }
    let first = typed_without_echo(prompt)?;
    let again = typed_without_echo("Again: ")?;
    if first != again {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the two passwords differ",
        ));
    }
    Ok(first)
}

fn read_line() -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    io::stdin().lock().read_until(b'\n', &mut line)?;
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

fn typed_without_echo(prompt: &str) -> io::Result<Vec<u8>> {
    let mut stderr = io::stderr();
    stderr.write_all(prompt.as_bytes())?;
    stderr.flush()?;
    let saved = EchoOff::new()?;
    let line = read_line();
    drop(saved);
    // The Enter key's newline was not echoed either.
    stderr.write_all(b"\n")?;
    line
}

/// The terminal's echo turned off, and back on when dropped.
struct EchoOff {
    saved: libc::termios,
}

impl EchoOff {
    fn new() -> io::Result<EchoOff> {
        // SAFETY: an all-zero termios is a valid value for tcgetattr to fill.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr writes into the struct we own.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: tcsetattr reads the struct we own.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: tcsetattr reads the struct we own.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved) };
    }
}
