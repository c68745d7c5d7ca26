//! The async runtime openraft runs on: tokio, with one difference — the randomness openraft asks
//! for (election timeouts) comes from a per-thread generator that a simulation can seed, so a
//! simulated run replays exactly from its seed. Unseeded threads draw from the operating system's
//! entropy, as `openraft::TokioRuntime` does.

use openraft::{AsyncRuntime, OptionalSend, TokioInstant};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

thread_local! {
    static SEEDED: RefCell<Option<StdRng>> = const { RefCell::new(None) };
}

/// Seed this thread's generator (the simulation calls this once per run, before any node
/// starts). `None` returns to operating-system entropy.
pub fn seed_thread_rng(seed: Option<u64>) {
    SEEDED.with(|s| *s.borrow_mut() = seed.map(StdRng::seed_from_u64));
}

/// The generator openraft receives: the thread's seeded one if set, else `rand::thread_rng()`.
pub struct LedgerRng;

impl LedgerRng {
    fn with<T>(f: impl FnOnce(&mut dyn RngCore) -> T) -> T {
        SEEDED.with(|s| match s.borrow_mut().as_mut() {
            Some(rng) => f(rng),
            None => f(&mut rand::thread_rng()),
        })
    }
}

impl RngCore for LedgerRng {
    fn next_u32(&mut self) -> u32 {
        Self::with(|r| r.next_u32())
    }

    fn next_u64(&mut self) -> u64 {
        Self::with(|r| r.next_u64())
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        Self::with(|r| r.fill_bytes(dest))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        Self::with(|r| r.try_fill_bytes(dest))
    }
}

/// openraft's tokio runtime with [`LedgerRng`] as its randomness.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LedgerRuntime;

impl AsyncRuntime for LedgerRuntime {
    type JoinError = <openraft::TokioRuntime as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> =
        <openraft::TokioRuntime as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <openraft::TokioRuntime as AsyncRuntime>::Sleep;
    type Instant = TokioInstant;
    type TimeoutError = <openraft::TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> =
        <openraft::TokioRuntime as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = LedgerRng;
    type OneshotSender<T: OptionalSend> =
        <openraft::TokioRuntime as AsyncRuntime>::OneshotSender<T>;
    type OneshotReceiverError = <openraft::TokioRuntime as AsyncRuntime>::OneshotReceiverError;
    type OneshotReceiver<T: OptionalSend> =
        <openraft::TokioRuntime as AsyncRuntime>::OneshotReceiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        openraft::TokioRuntime::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        openraft::TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        openraft::TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        openraft::TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        openraft::TokioRuntime::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        openraft::TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        LedgerRng
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        openraft::TokioRuntime::oneshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_thread_replays_and_an_unseeded_one_does_not_repeat() {
        seed_thread_rng(Some(7));
        let a: Vec<u64> = (0..4)
            .map(|_| LedgerRuntime::thread_rng().next_u64())
            .collect();
        seed_thread_rng(Some(7));
        let b: Vec<u64> = (0..4)
            .map(|_| LedgerRuntime::thread_rng().next_u64())
            .collect();
        assert_eq!(a, b);
        seed_thread_rng(None);
        let c: Vec<u64> = (0..4)
            .map(|_| LedgerRuntime::thread_rng().next_u64())
            .collect();
        let d: Vec<u64> = (0..4)
            .map(|_| LedgerRuntime::thread_rng().next_u64())
            .collect();
        assert_ne!(c, d);
    }
}
