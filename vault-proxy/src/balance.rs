//! Spreading connections over the worker threads.
//!
//! Every worker accepts on the same listening sockets, and whichever is
//! awake first takes what is in the backlog: a burst of connections (a
//! load balancer reconnecting, wrk opening 64 at once) lands mostly on one
//! thread, measured 2:1 and worse, and a keep-alive or tunnel connection
//! stays where it landed for its whole life. So each worker counts the
//! connections it serves, and one that accepts while it has more than the
//! least loaded worker plus one hands the socket to that worker instead of
//! serving it. The count is charged to the target at the decision, so a
//! burst alternates instead of piling onto whichever worker looked idle.
//! Balanced arrivals cost nothing more than two relaxed loads; a hand-off
//! costs a channel send and a re-registration with the target's reactor,
//! once per connection, never per request.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Work a worker runs on its own runtime: spawning a handed-off connection.
pub type Handoff = Box<dyn FnOnce() + Send>;

/// Added to a retired worker's count: never the least loaded again.
const RETIRED: u64 = 1 << 40;

#[derive(Default)]
#[repr(align(128))]
struct Slot {
    open: AtomicU64,
    handed: AtomicU64,
}

/// Open connections per worker and the workers' inboxes.
pub struct Balancer {
    slots: Box<[Slot]>,
    inbox: Box<[mpsc::UnboundedSender<Handoff>]>,
}

/// The receiving end of one worker's inbox.
pub type Inbox = mpsc::UnboundedReceiver<Handoff>;

impl Balancer {
    /// A balancer for `workers` worker threads (numbered from 1), and each
    /// worker's inbox in order.
    pub fn new(workers: usize) -> (Balancer, Vec<Inbox>) {
        let (tx, rx): (Vec<_>, Vec<_>) = (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
        let b = Balancer {
            slots: (0..workers).map(|_| Slot::default()).collect(),
            inbox: tx.into_boxed_slice(),
        };
        (b, rx)
    }

    /// Where worker `me` (1-based; 0 = not a worker thread) should serve a
    /// connection it has just accepted, already counted there: `me` itself
    /// unless another worker has at least two fewer open connections. Off
    /// the worker threads nothing moves; the count goes to worker 1.
    pub fn place(self: &Arc<Self>, me: usize) -> Ticket {
        let n = self.slots.len();
        let mine = me.checked_sub(1).filter(|&i| i < n);
        let target = match mine {
            Some(i) if n > 1 => {
                let own = self.slots[i].open.load(Relaxed);
                let (j, least) = (0..n)
                    .map(|j| (j, self.slots[j].open.load(Relaxed)))
                    .min_by_key(|&(_, v)| v)
                    .unwrap_or((i, own));
                if own > least + 1 {
                    j
                } else {
                    i
                }
            }
            Some(i) => i,
            None => 0,
        };
        self.slots[target].open.fetch_add(1, Relaxed);
        Ticket {
            b: self.clone(),
            slot: target,
            moved: mine.is_some_and(|i| i != target),
        }
    }

    /// Sends `work` to worker slot `slot` ([`Ticket::slot`]). When that
    /// worker's inbox is closed (it has stopped), the work is handed back
    /// to run here.
    pub fn send(&self, slot: usize, work: Handoff) -> Result<(), Handoff> {
        self.inbox[slot].send(work).map_err(|e| e.0)?;
        self.slots[slot].handed.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Takes worker slot `slot` (0-based) out of the choice for good: its
    /// thread could not start, so nothing should be handed to it.
    pub fn retire(&self, slot: usize) {
        if let Some(s) = self.slots.get(slot) {
            s.open.fetch_add(RETIRED, Relaxed);
        }
    }

    /// (open connections, connections handed to it) per worker, in order.
    pub fn loads(&self) -> Vec<(u64, u64)> {
        self.slots
            .iter()
            .map(|s| (s.open.load(Relaxed) % RETIRED, s.handed.load(Relaxed)))
            .collect()
    }
}

/// One connection's place on a worker; dropping it ends the count.
pub struct Ticket {
    b: Arc<Balancer>,
    slot: usize,
    moved: bool,
}

impl Ticket {
    /// True when the connection belongs on another worker than the one
    /// that accepted it.
    pub fn moved(&self) -> bool {
        self.moved
    }
    /// The worker slot (0-based) the connection is counted on.
    pub fn slot(&self) -> usize {
        self.slot
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.b.slots[self.slot].open.fetch_sub(1, Relaxed);
    }
}

/// Runs what other workers hand to this one, for as long as the worker's
/// runtime runs.
pub async fn serve_inbox(mut inbox: Inbox) {
    while let Some(work) = inbox.recv().await {
        work();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_on_one_worker_alternates_between_two() {
        let (b, _rx) = Balancer::new(2);
        let b = Arc::new(b);
        let tickets: Vec<Ticket> = (0..64).map(|_| b.place(1)).collect();
        let moved = tickets.iter().filter(|t| t.moved()).count();
        assert_eq!(moved, 31, "worker 1 keeps one more than worker 2");
        assert_eq!(
            b.loads().iter().map(|l| l.0).collect::<Vec<_>>(),
            vec![33, 31]
        );
        drop(tickets);
        assert_eq!(
            b.loads().iter().map(|l| l.0).collect::<Vec<_>>(),
            vec![0, 0]
        );
    }

    #[test]
    fn the_least_loaded_of_four_gets_the_next() {
        let (b, _rx) = Balancer::new(4);
        let b = Arc::new(b);
        let keep: Vec<Ticket> = (0..12).map(|_| b.place(3)).collect();
        let spread: Vec<u64> = b.loads().iter().map(|l| l.0).collect();
        assert_eq!(spread.iter().sum::<u64>(), 12);
        assert!(spread.iter().all(|&v| (2..=4).contains(&v)), "{spread:?}");
        drop(keep);
    }

    #[test]
    fn one_worker_or_no_worker_never_moves() {
        let (b, _rx) = Balancer::new(1);
        let b = Arc::new(b);
        let t: Vec<Ticket> = (0..5).map(|_| b.place(1)).collect();
        assert!(t.iter().all(|t| !t.moved()));
        let (b2, _rx2) = Balancer::new(2);
        let b2 = Arc::new(b2);
        let off = b2.place(0);
        assert!(!off.moved(), "off a worker thread, the connection stays");
        assert_eq!(b2.loads()[0].0, 1);
    }

    #[test]
    fn a_retired_worker_gets_nothing() {
        let (b, _rx) = Balancer::new(3);
        let b = Arc::new(b);
        b.retire(1);
        let t: Vec<Ticket> = (0..10).map(|_| b.place(1)).collect();
        assert!(t.iter().all(|t| t.slot() != 1));
        assert_eq!(b.loads()[1].0, 0);
        assert_eq!(b.loads()[0].0 + b.loads()[2].0, 10);
    }

    #[test]
    fn a_closed_inbox_hands_the_work_back() {
        let (b, rx) = Balancer::new(2);
        let b = Arc::new(b);
        drop(rx);
        let _keep = b.place(1);
        let t = b.place(1);
        let t2 = b.place(1);
        assert!(!t.moved() && t2.moved());
        let back = b
            .send(t2.slot(), Box::new(|| ()))
            .expect_err("inbox closed");
        back();
    }
}
