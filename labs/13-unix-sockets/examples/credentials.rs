//! What the kernel tells about the other end of a Unix domain socket:
//! `SO_PEERCRED` (who made the connection), `SCM_CREDENTIALS` (who sent
//! this message, checked by the kernel), and `SCM_RIGHTS` (an open file
//! handed over: here a pipe's read end, from a parent to its child).
//!
//! Usage (inside `labs/13-unix-sockets`): `cargo run --example credentials`

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{Context, bail};
use nix::cmsg_space;
use nix::sys::socket::{
    self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixAddr, UnixCredentials, sockopt,
};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, getpid, pipe};

fn main() -> anyhow::Result<()> {
    peer_credentials()?;
    scm_credentials()?;
    scm_rights()
}

fn pair(ty: SockType) -> anyhow::Result<(OwnedFd, OwnedFd)> {
    socket::socketpair(AddressFamily::Unix, ty, None, SockFlag::SOCK_CLOEXEC).context("socketpair")
}

/// Runs `child` in a child process, which then `_exit`s (0, or 1 if it
/// failed), and waits for it.
fn in_child(child: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    // SAFETY: single-threaded; the child runs `child` and _exits.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let code = match child() {
                Ok(()) => 0,
                Err(error) => {
                    eprintln!("child: {error:#}");
                    1
                }
            };
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            waitpid(child, None).context("waitpid")?;
            Ok(())
        }
    }
}

fn peer_credentials() -> anyhow::Result<()> {
    // ANCHOR: peercred
    let (left, right) = pair(SockType::Stream)?;
    let peer = socket::getsockopt(&left, sockopt::PeerCredentials)?;
    show(
        "SO_PEERCRED of a socketpair",
        format!("pid {} (this process is {})", peer.pid(), getpid()),
    );
    in_child(move || {
        // Recorded when the pair was made: fork changes nothing.
        let peer = socket::getsockopt(&right, sockopt::PeerCredentials)?;
        show(
            "the same, asked by the child",
            format!("pid {} (the child is {})", peer.pid(), getpid()),
        );
        Ok(())
    })?;
    // ANCHOR_END: peercred
    Ok(())
}

fn scm_credentials() -> anyhow::Result<()> {
    // ANCHOR: scm_credentials
    let (sender, receiver) = pair(SockType::Datagram)?;
    // Ask the kernel to attach the sender's credentials to every message.
    socket::setsockopt(&receiver, sockopt::PassCred, &true)?;
    in_child(move || {
        socket::send(sender.as_raw_fd(), b"plain", MsgFlags::empty())?;
        show(
            "child: sends a plain datagram",
            format!("from pid {}", getpid()),
        );
        // Claim to be root (uid 0): only a privileged process may.
        let forged = UnixCredentials::from(libc::ucred {
            pid: getpid().as_raw(),
            uid: 0,
            gid: 0,
        });
        let claimed = socket::sendmsg::<UnixAddr>(
            sender.as_raw_fd(),
            &[IoSlice::new(b"forged")],
            &[ControlMessage::ScmCredentials(&forged)],
            MsgFlags::empty(),
            None,
        );
        show("child: claims uid 0", format!("{claimed:?}"));
        Ok(())
    })?;
    let mut buf = [0u8; 16];
    loop {
        let mut space = cmsg_space!(UnixCredentials);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let message = match socket::recvmsg::<UnixAddr>(
            receiver.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(message) => message,
            Err(_) => break,
        };
        for control in message.cmsgs()? {
            if let ControlMessageOwned::ScmCredentials(from) = control {
                show(
                    "parent: a datagram, sent by",
                    format!("pid {}, uid {}", from.pid(), from.uid()),
                );
            }
        }
    }
    // ANCHOR_END: scm_credentials
    Ok(())
}

fn scm_rights() -> anyhow::Result<()> {
    // ANCHOR: scm_rights
    let (parent_end, child_end) = pair(SockType::Stream)?;
    // SAFETY: single-threaded; the child receives, reads and _exits.
    let child = match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(parent_end);
            let code = match read_what_comes(&child_end) {
                Ok(()) => 0,
                Err(error) => {
                    eprintln!("child: {error:#}");
                    1
                }
            };
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(child_end);
    // Made after the fork: the child cannot have inherited it.
    let (pipe_read, pipe_write) = pipe().context("pipe")?;
    show("parent: sends its pipe's read end", pipe_read.as_raw_fd());
    socket::sendmsg::<UnixAddr>(
        parent_end.as_raw_fd(),
        &[IoSlice::new(b"+")],
        &[ControlMessage::ScmRights(&[pipe_read.as_raw_fd()])],
        MsgFlags::empty(),
        None,
    )?;
    drop(pipe_read);
    let mut writer = std::fs::File::from(pipe_write);
    writer.write_all(b"written by the parent into its pipe")?;
    drop(writer);
    waitpid(child, None).context("waitpid")?;
    Ok(())
}

/// The child's side: one byte and a descriptor, then read the pipe.
fn read_what_comes(socket_end: &OwnedFd) -> anyhow::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = cmsg_space!(RawFd);
    let message = socket::recvmsg::<UnixAddr>(
        socket_end.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let Some(ControlMessageOwned::ScmRights(fds)) = message.cmsgs()?.next() else {
        bail!("no descriptor came");
    };
    // SAFETY: the kernel has just installed it; nobody else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    show("child: received it as descriptor", fd.as_raw_fd());
    let mut text = String::new();
    std::fs::File::from(fd).read_to_string(&mut text)?;
    show("child: read through it", format!("{text:?}"));
    Ok(())
}
// ANCHOR_END: scm_rights

fn show(label: &str, value: impl std::fmt::Display) {
    println!("{label:<34} {value}");
}
