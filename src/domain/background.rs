//! Draining background work on demand, for tests: the writes started by
//! [`Core::in_background`] (first-use audit events, last-use times) are
//! awaited here rather than polled for over HTTP.

use super::Core;

impl Core {
    /// Returns once every background write started so far has finished,
    /// so what is read next sees its effect. Shutdown waits the same way.
    pub async fn drain_background(&self) {
        self.background.wait().await;
    }
}
