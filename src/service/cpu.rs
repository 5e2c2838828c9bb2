//! CPU-heavy work (reading, validating and rendering a handover) off the async workers.
//!
//! Rendering a letter into a PDF takes milliseconds for a real record but is CPU work all the same; on
//! the async runtime it would hold a worker thread, and a few large requests would hold them all, so
//! that `/healthz` and every other request waits. [`CpuPool::run`] moves the work to tokio's blocking
//! threads under a semaphore of one permit per core: at most that many renders run at once, the
//! others wait (asynchronously) for a permit, and the async workers stay free to answer.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Permits for CPU-bound work, shared by every request of one gateway.
#[derive(Debug, Clone)]
pub struct CpuPool {
    permits: Arc<Semaphore>,
}

impl CpuPool {
    /// `threads` at once; 0 means one per CPU core.
    pub fn new(threads: usize) -> CpuPool {
        let n = if threads == 0 { std::thread::available_parallelism().map_or(2, usize::from) } else { threads };
        CpuPool { permits: Arc::new(Semaphore::new(n)) }
    }

    /// Runs `work` on a blocking thread once a permit is free. If the caller stops waiting (its
    /// request ran out of time), the work still finishes on its thread, holding its permit, and its
    /// result is dropped: CPU work cannot be interrupted, but it can be kept from crowding out the
    /// rest.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = self.permits.clone().acquire_owned().await.expect("the CPU semaphore is never closed");
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        });
        match task.await {
            Ok(v) => v,
            // A panic in the work is a bug: it reaches the caller as it would have inline.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("blocking task cancelled (the runtime is shutting down): {e}"),
        }
    }
}

impl Default for CpuPool {
    fn default() -> Self {
        CpuPool::new(0)
    }
}
