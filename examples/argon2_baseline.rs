//! The benchmark's hashing baseline: how many argon2id hashes per second
//! this machine does with the given parameters on the given number of
//! threads, with nothing else in the way (no server, no queue, each thread
//! hashing into one reused memory block).
//!
//! `cargo run --release --example argon2_baseline -- M_KIB T P THREADS SECONDS`
//! prints one line: `hashes_per_sec=<n>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};

fn main() -> Result<(), String> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>().map_err(|e| format!("{a}: {e}")))
        .collect::<Result<_, _>>()?;
    let [m, t, p, threads, seconds] = args[..] else {
        return Err("usage: argon2_baseline M_KIB T P THREADS SECONDS".into());
    };
    let to_u32 = |v: u64| u32::try_from(v).map_err(|e| e.to_string());
    let params = Params::new(to_u32(m)?, to_u32(t)?, to_u32(p)?, None)
        .map_err(|e| format!("invalid parameters: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let (params, stop, done) = (params.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let mut memory = vec![Block::new(); argon.params().block_count()];
                let mut out = [0u8; 32];
                let mut salt = [0u8; 16];
                salt[..8].copy_from_slice(&i.to_le_bytes());
                while !stop.load(Ordering::Relaxed) {
                    if argon
                        .hash_password_into_with_memory(
                            b"a long enough password",
                            &salt,
                            &mut out,
                            &mut memory,
                        )
                        .is_ok()
                    {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join()
            .map_err(|_| "a hashing thread panicked".to_string())?;
    }
    // Hashes finished after the stop signal are counted over the time they
    // took, so the rate is the count over the whole elapsed time.
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "hashes_per_sec={:.1}",
        done.load(Ordering::Relaxed) as f64 / elapsed
    );
    Ok(())
}
