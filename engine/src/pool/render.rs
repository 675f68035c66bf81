//! The rendering rotation: the workers that said they can render, taken
//! in turn, and the wait while none can.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{Shared, WorkerHandle, WorkerPool};

impl WorkerPool {
    /// The next worker that is up and can render, in a rotation of its
    /// own. While there is none it waits, until `wait` has passed since
    /// render calls first found none (see `render_missing_since`): then
    /// `None`, at once for every later call until a rendering worker is
    /// found again.
    pub async fn next_render(&self, wait: Duration) -> Option<WorkerHandle> {
        let mut up_events = self.shared.up_events.subscribe();
        let mut waiting: Option<WaitGuard<'_>> = None;
        loop {
            up_events.borrow_and_update();
            let n = self.len();
            let start = self.shared.render_cursor.fetch_add(1, Ordering::Relaxed);
            for k in 0..n {
                let index = (start + k) % n;
                if let Some(handle) = self.shared.handle(index).filter(|_| self.can_render(index)) {
                    *self.shared.render_missing_since.lock().unwrap() = None;
                    return Some(handle);
                }
            }
            let now = Instant::now();
            let since = *self
                .shared
                .render_missing_since
                .lock()
                .unwrap()
                .get_or_insert(now);
            let deadline = since + wait;
            if now >= deadline {
                return None;
            }
            waiting.get_or_insert_with(|| WaitGuard::new(&self.shared.render_waiting));
            // Woken when a worker comes back or says it can render (the
            // pool owns the sender, so it stays open while `self` lives),
            // or when the wait is over.
            tokio::select! {
                _ = up_events.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Whether worker `index` is up and can render.
    pub fn can_render(&self, index: usize) -> bool {
        let state = self.shared.slots[index].state.lock().unwrap();
        state.client.is_some() && state.can_render
    }

    /// Workers up that can render.
    pub fn render_up_count(&self) -> usize {
        (0..self.len()).filter(|&i| self.can_render(i)).count()
    }

    /// Render calls waiting for a worker that can render.
    pub fn render_waiting(&self) -> usize {
        self.shared.render_waiting.load(Ordering::Relaxed)
    }

    /// `handle`'s worker answered a render request with
    /// `RenderError::Unavailable`: no more render requests for it until a
    /// status answer says it can render again.
    pub fn cannot_render(&self, handle: &WorkerHandle) {
        let mut state = self.shared.slots[handle.index].state.lock().unwrap();
        if state.generation == handle.generation && state.can_render {
            state.can_render = false;
            tracing::warn!(worker = %handle.addr, "worker cannot render (no browser); no more render requests for it");
        }
    }
}

/// Counts a waiting render call while it lives.
struct WaitGuard<'a>(&'a AtomicUsize);

impl<'a> WaitGuard<'a> {
    fn new(count: &'a AtomicUsize) -> WaitGuard<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        WaitGuard(count)
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    /// A status answer of `handle`'s connection said whether it can
    /// render; one that now can wakes the render calls waiting.
    pub(super) fn set_can_render(&self, handle: &WorkerHandle, can_render: bool) {
        let became = {
            let mut state = self.slots[handle.index].state.lock().unwrap();
            if state.generation != handle.generation {
                return;
            }
            let became = can_render && !state.can_render;
            state.can_render = can_render;
            became
        };
        if became {
            self.up_events.send_modify(|n| *n += 1);
        }
    }
}
