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
    // FILE *fin = popen("ls", "r");  runs /bin/sh -c ls, its stdout a pipe to us
    // SAFETY: both arguments are NUL-terminated strings.
    let fin = unsafe { libc::popen(c"ls".as_ptr(), c"r".as_ptr()) };
    if fin.is_null() {
        return Err(io::Error::last_os_error()).context("popen");
    }
    // char buf[BUFSIZ];  while (fgets(buf, BUFSIZ, fin) != NULL) fputs(buf, stdout);
    let mut buf: [libc::c_char; 8192] = [0; 8192];
    let size = buf.len() as libc::c_int;
    // SAFETY: fgets stores at most `size` bytes, the final NUL included.
    while !unsafe { libc::fgets(buf.as_mut_ptr(), size, fin) }.is_null() {
        // SAFETY: fgets left a NUL-terminated line in buf.
        let line = unsafe { CStr::from_ptr(buf.as_ptr()) };
        print!("{}", line.to_string_lossy());
    }
    // pclose closes the pipe, then waits for the shell with waitpid.
    // SAFETY: fin came from popen and is closed exactly once.
    let status = unsafe { libc::pclose(fin) };
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
