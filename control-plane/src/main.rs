//! The `wasm-ingress` binary: parses the command line and runs one subcommand.

use clap::Parser;

/// mimalloc rather than the system allocator: a full translation at 10 000 Ingresses allocates and
/// frees hundreds of thousands of small objects, and with glibc's allocator that cost (allocation,
/// free-list consolidation, dropping the previous translation) was about a third of each rebuild
/// (BENCHMARKS.md, propagation notes).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: the sys crate names its neighbours
/// (`mi_option_eager_commit_delay`, 14, and `mi_option_use_numa_nodes`, 16) but not it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Give freed pages back to the kernel at once instead of after mimalloc's 1 s delay (its v3
/// default), which ends only at the next allocation of the same thread: after a translation the
/// control plane goes quiet, and held the freed pages of the last one. At 10 000 Ingresses with
/// 500 TLS Secrets this took its RSS from 158–162 to 145–147 MiB, with route changes as fast
/// (BENCHMARKS.md, control plane).
fn purge_freed_memory_at_once() {
    // SAFETY: called first in `main`, before any other thread exists (mimalloc's options are
    // not thread-safe to set); the option and value are mimalloc's documented ones.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

fn main() -> std::process::ExitCode {
    purge_freed_memory_at_once();
    let cli = wasm_ingress::cli::Cli::parse();
    wasm_ingress::commands::run(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: reading an option; this test is the only one of this binary.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(before, 1000, "mimalloc v3's default purge delay: the index names that option");
        purge_freed_memory_at_once();
        // SAFETY: as above.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }, 0);
    }
}
