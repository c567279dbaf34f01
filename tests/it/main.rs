//! Integration tests: every test starts the real server (in-process or as
//! the `latchkey` binary) and speaks HTTP to it over a real socket.

mod harness;

mod foundation;
mod passwords;
mod process;
mod readme;
mod storage;
mod transport;
