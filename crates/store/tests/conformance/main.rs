//! One conformance suite, run against every driver: memory, file_system (fjall in a temporary
//! directory) and postgres (a fresh schema on the local server per test).

mod cases;
mod harness;

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        suite!(@driver memory, Memory, $($case),*);
        suite!(@driver file_system, FileSystem, $($case),*);
        suite!(@driver postgres, Postgres, $($case),*);
    };
    (@driver $module:ident, $kind:ident, $($case:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let mut h = crate::harness::Harness::new(crate::harness::Kind::$kind).await;
                    crate::cases::$case(&mut h).await;
                    h.finish().await;
                }
            )*
        }
    };
}

suite!(
    crud,
    binary_keys,
    range_semantics,
    range_reads_merge_own_writes,
    clear_range,
    atomic_ops,
    atomic_ops_do_not_conflict,
    lost_update_is_prevented,
    concurrent_increments,
    write_skew_is_prevented,
    concurrent_write_skew,
    retries_conflicts_and_passes_user_errors,
    retry_limit,
    snapshot_reads_do_not_conflict,
    explicit_conflict_ranges,
    range_read_conflicts,
    commit_versions_increase,
    large_values,
    scan_100k_keys,
    streaming_range_read,
    tuple_keys_and_subspaces,
    persistence_across_reopen,
    closed_database_refuses,
    finished_transaction_refuses,
);
