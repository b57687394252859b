//! Records build facts for `GET /metadata`: git commit, build time, compiler and target.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let git_sha = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string());
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| "unknown".to_string());

    println!("cargo:rustc-env=RIVET_GIT_SHA={git_sha}");
    println!("cargo:rustc-env=RIVET_BUILD_TIMESTAMP={}", rfc3339(secs));
    println!("cargo:rustc-env=RIVET_RUSTC_VERSION={rustc_version}");
    println!("cargo:rustc-env=RIVET_RUSTC_HOST={}", env("HOST"));
    println!("cargo:rustc-env=RIVET_CARGO_TARGET={}", env("TARGET"));
    println!("cargo:rustc-env=RIVET_CARGO_PROFILE={}", env("PROFILE"));
    println!("cargo:rerun-if-changed=build.rs");
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (civil calendar from days since the epoch).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
