//! The group commit: many small changes that arrive together share one
//! write transaction, and so one fsync.

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, WriteTx};

/// A change to run inside a group commit.
type Change = Box<dyn FnOnce(&mut WriteTx) -> Result<(), StoreError> + Send>;

/// A change waiting for a group commit, and where to say how it went.
pub(super) struct GroupJob {
    /// What to write.
    change: Change,
    /// Told the outcome of the commit that carried the change.
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Most changes one group commit carries.
const GROUP_MAX: usize = 256;

impl Store {
    /// Runs `change` in a write transaction shared with other changes that
    /// arrive meanwhile, and returns once that transaction is committed
    /// (durably). Under a flood of small writes (failed logins: a lockout
    /// counter and an audit entry each) this makes one fsync serve many
    /// requests instead of one each. `change` must only fail on storage
    /// errors: a failure aborts the whole group.
    pub async fn write_grouped<F>(&self, change: F) -> Result<(), StoreError>
    where
        F: FnOnce(&mut WriteTx) -> Result<(), StoreError> + Send + 'static,
    {
        let sender = self.group.get_or_init(|| self.start_group_writer());
        let (done, outcome) = oneshot::channel();
        let job = GroupJob {
            change: Box::new(change),
            done,
        };
        sender
            .send(job)
            .await
            .map_err(|_| StoreError::Storage("the group writer stopped".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Storage("the group writer stopped".into()))?
    }

    /// The writer holds the database only weakly, so dropping the last
    /// `Store` closes the database, drops the queue, and ends the writer.
    fn start_group_writer(&self) -> mpsc::Sender<GroupJob> {
        let (sender, mut queue) = mpsc::channel::<GroupJob>(4096);
        let db = Arc::downgrade(&self.db);
        let path = self.path.clone();
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < GROUP_MAX {
                    match queue.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let Some(db) = db.upgrade() else {
                    break;
                };
                let store = Store {
                    db,
                    path: path.clone(),
                    group: Arc::new(OnceLock::new()),
                };
                let ran = tokio::task::spawn_blocking(move || {
                    let mut waiting = Vec::with_capacity(jobs.len());
                    let result = store.write(|tx| {
                        for job in jobs {
                            waiting.push(job.done);
                            (job.change)(tx)?;
                        }
                        Ok::<_, StoreError>(())
                    });
                    (result, waiting)
                })
                .await;
                if let Ok((result, waiting)) = ran {
                    for done in waiting {
                        let _ = done.send(match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(e.again()),
                        });
                    }
                }
            }
        });
        sender
    }
}
