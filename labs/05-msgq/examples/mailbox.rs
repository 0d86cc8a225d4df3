//! A message queue (消息队列) used like a mailbox, with the raw libc calls:
//! letters of two types go in, come out whole, and can be picked by type.
//!
//! Usage (inside `labs/05-msgq`): `cargo run --example mailbox`
//!
//! One process plays both sides: a queue does not care who sends and who
//! receives. Nothing here depends on identifiers or process IDs, so the
//! output is the same on every run.

use std::io;
use std::mem::MaybeUninit;
use std::ptr;

use anyhow::{Context, bail};
use libc::{c_int, c_long};

// ANCHOR: letter
/// The notes' `struct msg_buffer { long mtype; char mtext[1024]; }`: the
/// type first, then room for the text.
#[repr(C)]
struct Letter {
    mtype: c_long,
    mtext: [u8; 1024],
}
// ANCHOR_END: letter

fn main() -> anyhow::Result<()> {
    // ANCHOR: create
    // IPC_PRIVATE: a new queue that no key leads to; 0600: only we may use it.
    // SAFETY: msgget takes two integers.
    let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
    if id == -1 {
        return Err(io::Error::last_os_error()).context("msgget");
    }
    // ANCHOR_END: create
    let result = post_and_collect(id);
    // ANCHOR: remove
    // The queue lives in the kernel until someone removes it, even after we exit.
    // SAFETY: IPC_RMID takes no buffer.
    if unsafe { libc::msgctl(id, libc::IPC_RMID, ptr::null_mut()) } == -1 {
        return Err(io::Error::last_os_error()).context("msgctl(IPC_RMID)");
    }
    // ANCHOR_END: remove
    result?;
    // The identifier is dead now: any call with it fails.
    match send(id, 1, "too late") {
        Err(error) => println!("after IPC_RMID, msgsnd fails: {error}"),
        Ok(()) => bail!("msgsnd succeeded on a removed queue"),
    }
    Ok(())
}

fn post_and_collect(id: c_int) -> anyhow::Result<()> {
    // ANCHOR: post
    const BILL: c_long = 2;
    const NOTE: c_long = 1;
    for (mtype, text) in [
        (BILL, "gas bill"),
        (NOTE, "see you at 8"),
        (BILL, "water bill"),
    ] {
        send(id, mtype, text).with_context(|| format!("send {text:?}"))?;
    }
    let (count, bytes) = contents(id)?;
    println!("in the box: {count} letters, {bytes} bytes of text");
    // ANCHOR_END: post

    // ANCHOR: collect
    // msgtyp > 0: the first letter of that type, skipping the others.
    println!("first bill:  {}", receive(id, BILL, 0)?);
    // msgtyp 0: the first letter, whatever its type.
    println!("next letter: {}", receive(id, 0, 0)?);
    println!("next letter: {}", receive(id, 0, 0)?);
    // The box is empty: with IPC_NOWAIT, msgrcv says so instead of waiting.
    match receive(id, 0, libc::IPC_NOWAIT) {
        Err(error) => println!("empty box:   {error}"),
        Ok(text) => bail!("an extra letter: {text}"),
    }
    // ANCHOR_END: collect
    Ok(())
}

// ANCHOR: send
/// Puts one letter of type `mtype` into the queue. `msgsz` is the length of
/// the text only: the `long` in front of it does not count.
fn send(id: c_int, mtype: c_long, text: &str) -> io::Result<()> {
    let mut letter = Letter {
        mtype,
        mtext: [0; 1024],
    };
    letter.mtext[..text.len()].copy_from_slice(text.as_bytes());
    // SAFETY: the kernel reads the long and text.len() bytes of `letter`.
    let sent = unsafe { libc::msgsnd(id, (&raw const letter).cast(), text.len(), 0) };
    if sent == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
// ANCHOR_END: send

// ANCHOR: receive
/// Takes one letter chosen by `msgtyp`; msgrcv returns its text's length.
fn receive(id: c_int, msgtyp: c_long, flags: c_int) -> io::Result<String> {
    let mut letter = Letter {
        mtype: 0,
        mtext: [0; 1024],
    };
    // SAFETY: the kernel writes the long and at most 1024 bytes of text.
    let length = unsafe { libc::msgrcv(id, (&raw mut letter).cast(), 1024, msgtyp, flags) };
    if length == -1 {
        return Err(io::Error::last_os_error());
    }
    let text = String::from_utf8_lossy(&letter.mtext[..length as usize]);
    Ok(format!("type {}, {text:?}", letter.mtype))
}
// ANCHOR_END: receive

// ANCHOR: contents
/// How many messages, and how many bytes of text, the queue holds:
/// `msg_qnum` and `__msg_cbytes` of its `msqid_ds`.
fn contents(id: c_int) -> anyhow::Result<(u64, u64)> {
    let mut stat = MaybeUninit::<libc::msqid_ds>::zeroed();
    // SAFETY: IPC_STAT fills the msqid_ds we pass.
    if unsafe { libc::msgctl(id, libc::IPC_STAT, stat.as_mut_ptr()) } == -1 {
        return Err(io::Error::last_os_error()).context("msgctl(IPC_STAT)");
    }
    // SAFETY: all zeros is a valid msqid_ds, and the kernel filled it in.
    let stat = unsafe { stat.assume_init() };
    Ok((stat.msg_qnum, stat.__msg_cbytes))
}
// ANCHOR_END: contents
