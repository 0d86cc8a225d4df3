//! The C library's own `popen` and `pclose`, called from Rust: the notes'
//! `popen("ls", "r")` and `fgets` loop, line for line.
//!
//! Usage (inside `labs/03-popen`): `cargo run --example c_popen`
//!
//! The lab's task 1 builds the same two functions from `pipe`, `fork`,
//! `dup2` and `exec`.

use std::ffi::CStr;
use std::io;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    // ANCHOR: c_popen
    // The C library forks /bin/sh -c ls, with its standard output piped to
    // us, and gives us the read end as a stdio stream.
    // SAFETY: both arguments are NUL-terminated strings.
    let listing = unsafe { libc::popen(c"ls".as_ptr(), c"r".as_ptr()) };
    if listing.is_null() {
        return Err(io::Error::last_os_error()).context("popen");
    }
    // fgets reads one line at a time and returns NULL at end-of-file.
    let mut line: [libc::c_char; 4096] = [0; 4096];
    let size = line.len() as libc::c_int;
    // SAFETY: fgets stores at most `size` bytes, the final NUL included.
    while !unsafe { libc::fgets(line.as_mut_ptr(), size, listing) }.is_null() {
        // SAFETY: fgets left a NUL-terminated line in `line`.
        let text = unsafe { CStr::from_ptr(line.as_ptr()) };
        print!("{}", text.to_string_lossy());
    }
    // pclose closes the pipe, then waits for the shell with waitpid.
    // SAFETY: `listing` came from popen and is closed exactly once.
    let status = unsafe { libc::pclose(listing) };
    if status == -1 {
        return Err(io::Error::last_os_error()).context("pclose");
    }
    println!("pclose: {}", describe(status));
    // ANCHOR_END: c_popen
    Ok(())
}

// ANCHOR: describe
/// The wait status `pclose` returns, taken apart with the C macros
/// `WIFEXITED`/`WEXITSTATUS` and `WIFSIGNALED`/`WTERMSIG`.
fn describe(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!(
            "the command exited with status {}",
            libc::WEXITSTATUS(status)
        )
    } else if libc::WIFSIGNALED(status) {
        format!(
            "the command was killed by signal {}",
            libc::WTERMSIG(status)
        )
    } else {
        format!("raw wait status {status:#x}")
    }
}
// ANCHOR_END: describe
