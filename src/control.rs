//! The control socket: how `latchkey recover-admin` and `latchkey backup`
//! reach a running server without a password.
//!
//! A Unix socket, `control.sock` in the data directory, mode 0600 in a
//! directory latchkey keeps at 0700 or tighter: only the data directory's
//! owner (and root) can connect, which is the same set of users who could
//! read the store itself. The peer's uid is checked again on every
//! connection. The protocol is one request line of JSON (at most
//! [`MAX_REQUEST_BYTES`], within [`REQUEST_TIMEOUT`]) and one answer line of
//! JSON; a backup's answer line is followed by exactly the number of bytes
//! it announces. Nothing read or written here is logged beyond the
//! operation's name: a recovered password crosses the socket once and goes
//! nowhere else.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::domain::Core;
use crate::store::backup;

/// The socket's name inside the data directory.
pub const SOCKET_FILE: &str = "control.sock";

/// Longest request line, in bytes.
pub const MAX_REQUEST_BYTES: u64 = 1024;

/// Longest answer line, in bytes (a backup's bytes follow it, counted apart).
pub const MAX_ANSWER_BYTES: u64 = 16 * 1024;

/// How long a client has to send its request line, and how long either side
/// waits for the other to take or give the next chunk.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a client waits for the answer line: a recovery waits for one
/// password hash, a backup for the snapshot of the whole store.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(600);

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONCURRENT: usize = 4;

/// A request, the one line a client sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Is a server there?
    Ping,
    /// Recover an admin account (see `Core::recover_admin`).
    RecoverAdmin {
        /// Username or email; `None` picks the oldest admin.
        username: Option<String>,
    },
    /// A consistent backup archive of the store and its master key.
    Backup,
}

/// The answer line.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Answer {
    /// Whether the operation was done.
    pub ok: bool,
    /// Why not, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The server's process id (ping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The recovered account's username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The recovered account's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The recovered account's new password, shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Sessions the recovery ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_ended: Option<usize>,
    /// Length of the backup archive that follows the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl Answer {
    fn refused(error: impl Into<String>) -> Answer {
        Answer {
            ok: false,
            error: Some(error.into()),
            ..Answer::default()
        }
    }
}

/// The socket server of a running latchkey.
pub struct ControlServer {
    /// The socket file, removed at a clean stop.
    path: PathBuf,
    /// The accept loop.
    task: JoinHandle<()>,
}

impl ControlServer {
    /// Binds `control.sock` in `data_dir`. A socket file left by a process
    /// that crashed is replaced: the caller holds the store open, which
    /// redb grants to one process only, so no other server can own it.
    /// The socket is bound under a temporary name, narrowed to 0600, then
    /// renamed into place, so it is never reachable with wider rights.
    pub fn start(data_dir: &Path, core: Arc<Core>) -> io::Result<ControlServer> {
        let path = data_dir.join(SOCKET_FILE);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(path = %path.display(), "replaced a stale control socket"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let staging = data_dir.join(format!(".control-{}.sock", uuid::Uuid::new_v4().simple()));
        let listener = UnixListener::bind(&staging)?;
        let placed = (|| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&staging, &path)
        })();
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&staging);
            return Err(e);
        }
        let owner = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(data_dir)?.uid()
        };
        let dir = data_dir.to_path_buf();
        let task = tokio::spawn(accept_loop(listener, core, dir, owner));
        Ok(ControlServer { path, task })
    }

    /// Stops answering and removes the socket file.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept_loop(listener: UnixListener, core: Arc<Core>, dir: PathBuf, owner: u32) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let core = core.clone();
        let dir = dir.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = serve_one(stream, &core, &dir, owner).await {
                tracing::warn!(error = %e, "control connection failed");
            }
        });
    }
}

/// Serves one connection: one request, one answer.
async fn serve_one(stream: UnixStream, core: &Arc<Core>, dir: &Path, owner: u32) -> io::Result<()> {
    let uid = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    if uid != owner && uid != 0 {
        tracing::warn!(
            uid,
            "control socket: refused a peer that does not own the data directory"
        );
        return send(
            &mut write,
            &Answer::refused("not the data directory's owner"),
        )
        .await;
    }
    let mut line = Vec::new();
    let mut limited = BufReader::new(read).take(MAX_REQUEST_BYTES + 1);
    match tokio::time::timeout(REQUEST_TIMEOUT, limited.read_until(b'\n', &mut line)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return send(&mut write, &Answer::refused("no request line in time")).await,
    }
    if line.len() as u64 > MAX_REQUEST_BYTES || !line.ends_with(b"\n") {
        return send(
            &mut write,
            &Answer::refused("the request line is too long or unfinished"),
        )
        .await;
    }
    let request: Request = match serde_json::from_slice(&line) {
        Ok(r) => r,
        Err(_) => {
            return send(
                &mut write,
                &Answer::refused("not a request this server knows"),
            )
            .await;
        }
    };
    match request {
        Request::Ping => {
            let answer = Answer {
                ok: true,
                pid: Some(std::process::id()),
                ..Answer::default()
            };
            send(&mut write, &answer).await
        }
        Request::RecoverAdmin { username } => {
            tracing::info!("control socket: recover-admin");
            let answer = match core.recover_admin(username.as_deref()).await {
                Ok(r) => Answer {
                    ok: true,
                    username: Some(r.username),
                    email: Some(r.email),
                    password: Some(r.password),
                    sessions_ended: Some(r.sessions_ended),
                    ..Answer::default()
                },
                Err(e) => Answer::refused(e.to_string()),
            };
            send(&mut write, &answer).await
        }
        Request::Backup => {
            tracing::info!("control socket: backup");
            let store = core.store().clone();
            let dir = dir.to_path_buf();
            let made = tokio::task::spawn_blocking(move || {
                let (for_redb, back) = backup::anonymous_file(&dir)?;
                let outline = backup::snapshot_into(&store, for_redb).map_err(io::Error::other)?;
                let master = backup::read_master_key(&dir).map_err(io::Error::other)?;
                let len = back.metadata()?.len();
                Ok::<_, io::Error>((outline, master, back, len))
            })
            .await
            .map_err(io::Error::other)?;
            let (outline, master, back, len) = match made {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "backup snapshot failed");
                    return send(
                        &mut write,
                        &Answer::refused(format!("snapshot failed: {e}")),
                    )
                    .await;
                }
            };
            let header = crate::ops::archive_header(outline.schema_version, &master, len);
            let total = header.len() as u64 + len + crate::ops::DIGEST_LEN as u64;
            let answer = Answer {
                ok: true,
                bytes: Some(total),
                ..Answer::default()
            };
            send(&mut write, &answer).await?;
            let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
            digest.update(&header);
            timed(write.write_all(&header)).await?;
            let mut file = tokio::fs::File::from_std(back);
            file.seek(SeekFrom::Start(0)).await?;
            let mut left = len;
            let mut buf = vec![0u8; 64 * 1024];
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = file.read(&mut buf[..want]).await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "snapshot shrank",
                    ));
                }
                digest.update(&buf[..n]);
                timed(write.write_all(&buf[..n])).await?;
                left -= n as u64;
            }
            timed(write.write_all(digest.finish().as_ref())).await?;
            timed(write.shutdown()).await
        }
    }
}

/// Runs one write with the per-chunk deadline: a client that stops reading
/// does not hold the connection slot for ever.
async fn timed(write: impl std::future::Future<Output = io::Result<()>>) -> io::Result<()> {
    tokio::time::timeout(REQUEST_TIMEOUT * 6, write)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading"))?
}

async fn send(write: &mut (impl AsyncWriteExt + Unpin), answer: &Answer) -> io::Result<()> {
    let mut line = serde_json::to_vec(answer).map_err(io::Error::other)?;
    line.push(b'\n');
    timed(write.write_all(&line)).await
}

/// How a client's call went.
#[derive(Debug)]
pub enum CallError {
    /// No server listens on the socket (no file, or a stale one).
    NotRunning,
    /// Anything else: the message says what.
    Failed(String),
}

/// A connection to a running server, after its answer line.
pub struct Reply {
    /// The answer.
    pub answer: Answer,
    /// The rest of the connection (a backup's bytes).
    pub rest: BufReader<tokio::net::unix::OwnedReadHalf>,
}

/// Sends `request` to the server whose data directory is `data_dir`.
pub async fn call(data_dir: &Path, request: &Request) -> Result<Reply, CallError> {
    let path = data_dir.join(SOCKET_FILE);
    let stream = match tokio::time::timeout(REQUEST_TIMEOUT, UnixStream::connect(&path)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e))
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(CallError::NotRunning);
        }
        Ok(Err(e)) => {
            return Err(CallError::Failed(format!(
                "cannot connect to {}: {e}",
                path.display()
            )));
        }
        Err(_) => {
            return Err(CallError::Failed(format!(
                "{} did not accept in time",
                path.display()
            )));
        }
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request).map_err(|e| CallError::Failed(e.to_string()))?;
    line.push(b'\n');
    let failed = |e: io::Error| CallError::Failed(format!("control socket: {e}"));
    tokio::time::timeout(REQUEST_TIMEOUT, write.write_all(&line))
        .await
        .map_err(|_| {
            CallError::Failed("control socket: the server did not take the request".into())
        })?
        .map_err(failed)?;
    let mut rest = BufReader::new(read);
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        ANSWER_TIMEOUT,
        (&mut rest)
            .take(MAX_ANSWER_BYTES + 1)
            .read_until(b'\n', &mut answer),
    )
    .await
    .map_err(|_| CallError::Failed("control socket: no answer in time".into()))?;
    read.map_err(failed)?;
    if answer.len() as u64 > MAX_ANSWER_BYTES || !answer.ends_with(b"\n") {
        return Err(CallError::Failed(
            "control socket: the answer is too long or unfinished".into(),
        ));
    }
    let answer: Answer = serde_json::from_slice(&answer).map_err(|_| {
        CallError::Failed("control socket: an answer this build does not understand".into())
    })?;
    if !answer.ok {
        return Err(CallError::Failed(
            answer
                .error
                .unwrap_or_else(|| "refused without a reason".into()),
        ));
    }
    Ok(Reply { answer, rest })
}

/// Reads exactly `len` bytes from `from` into `to`, each chunk within the
/// chunk deadline.
pub async fn copy_exact(
    from: &mut (impl AsyncRead + Unpin),
    len: u64,
    mut to: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut left = len;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = tokio::time::timeout(REQUEST_TIMEOUT * 6, from.read(&mut buf[..want]))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the server stopped sending"))??;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection before the whole backup was sent",
            ));
        }
        to(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}
