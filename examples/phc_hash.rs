//! One argon2id PHC string for the benchmark's seeded accounts: the
//! accounts `latchkey import` loads all share it, so seeding 100,000 of
//! them costs one hash, not 100,000.
//!
//! `phc_hash M_KIB T P PASSWORD` prints the PHC string with a random salt.

use argon2::password_hash::PasswordHasher as _;
use argon2::{Algorithm, Argon2, Params, Version};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [m, t, p, password] = &args[..] else {
        return Err("usage: phc_hash M_KIB T P PASSWORD".into());
    };
    let num = |v: &str| v.parse::<u32>().map_err(|e| format!("{v}: {e}"));
    let params = Params::new(num(m)?, num(t)?, num(p)?, None)
        .map_err(|e| format!("invalid parameters: {e}"))?;
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| "no randomness".to_string())?;
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| e.to_string())?;
    println!("{hash}");
    Ok(())
}
