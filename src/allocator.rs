//! The allocator's settings for `gamedeploy run`, made in code from the process's first
//! instructions, so nothing has to be set in the environment.
//!
//! **mimalloc** (default build). The operator trades a little allocation speed for memory:
//! freed pages go back to the system at once (`purge_delay` 0, default 1000 ms) and arenas
//! are committed as they are used (`arena_eager_commit` 0; default 2, eagerly on Linux). The
//! simulator and the embedded cluster keep the defaults, which are faster for them
//! (BENCHMARKS.md, "`gamedeploy run` memory").
//!
//! When they are read (mimalloc 3.3 as libmimalloc-sys 0.1.49 builds it): mimalloc starts in
//! its own ELF constructor (`mi_process_attach` in `src/prim/prim.c`, `__attribute__
//! ((constructor))`, no priority under gcc, 101 under clang), which calls `mi_process_init`
//! (`src/init.c`), whose `_mi_options_init` (`src/options.c`) reads every option from the
//! environment once. Its first 1 GiB arena is reserved on the first allocation after that
//! (`mi_arena_reserve`, `src/arena.c`, reading `arena_eager_commit` then). Set from `main`, as
//! before, the options came after the process had allocated (parsing the command line does),
//! so the first arena was committed eagerly anyway. Here they are set by a constructor in
//! `.init_array.00100`: the linker sorts prioritised `.init_array.N` sections before the
//! unprioritised `.init_array` and by N, so it runs before mimalloc's and before any Rust
//! code allocates. glibc passes constructors the process's `argc` and `argv` (the extension
//! Rust's own `std` reads its arguments with, `library/std/src/sys/args/unix.rs`, from
//! `.init_array.00099`), so the constructor applies them to `run` only. They are set as
//! defaults (`mi_option_set_default`): a `MIMALLOC_*` variable in the environment still wins.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
use std::ffi::{CStr, c_char, c_int};

/// Option numbers of `mi_option_e` in the mimalloc.h that libmimalloc-sys (locked) builds;
/// the crate names only some options.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Runs before mimalloc starts (see the module doc). Not in the unit tests' binary, whose
/// arguments are test names.
#[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
#[used]
#[unsafe(link_section = ".init_array.00100")]
static AT_LOAD: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = at_load;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn at_load(argc: c_int, argv: *const *const c_char, _envp: *const *const c_char) {
    let count = usize::try_from(argc).unwrap_or(0);
    let args = (0..count)
        // SAFETY: glibc hands `.init_array` functions the `argc` and `argv` it hands `main`:
        // `argc` pointers to NUL-terminated strings, alive for the whole process.
        .map(|i| unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes());
    if runs_operator(args) {
        lean();
    }
}

/// Whether the command line (program name first) is `gamedeploy run ...`: the subcommand is
/// the first argument, as clap reads it (the CLI has no options before the subcommand; a
/// `run` line clap refuses exits at once).
#[cfg(any(test, all(target_os = "linux", target_env = "gnu")))]
fn runs_operator<'a>(mut args: impl Iterator<Item = &'a [u8]>) -> bool {
    args.nth(1) == Some(b"run".as_slice())
}

/// Makes the operator's settings mimalloc's defaults. Where there is no constructor to call
/// it (not glibc), `main` does, after parsing the command line.
pub(crate) fn lean() {
    // SAFETY: a plain store into mimalloc's option table, which needs no initialisation.
    unsafe {
        libmimalloc_sys::mi_option_set_default(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set_default(PURGE_DELAY, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The numbers name the options meant: each reads its default in mimalloc's options.c
    /// (2, and 1000 ms) before anything sets it (the unit tests' binary has no constructor).
    /// The constructor's function, given a command line, sets them for `run` only. The one
    /// test that reads or sets them, so nothing races.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_constructor_sets_the_operators_options_for_run_only() {
        // SAFETY: reading an option has no preconditions.
        let options = || unsafe {
            (
                libmimalloc_sys::mi_option_get(ARENA_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(PURGE_DELAY),
            )
        };
        let call = |line: &str| {
            let args: Vec<std::ffi::CString> = line
                .split(' ')
                .map(|a| std::ffi::CString::new(a).unwrap())
                .collect();
            let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
            at_load(argv.len() as c_int, argv.as_ptr(), std::ptr::null());
        };
        assert_eq!(options(), (2, 1000));
        call("gamedeploy status run");
        call("gamedeploy simulate run.yaml");
        assert_eq!(options(), (2, 1000));
        call("gamedeploy run --kubeconfig k");
        assert_eq!(options(), (0, 0));
    }

    /// The constructor's reading of the command line agrees with clap's on which runs the
    /// operator.
    #[test]
    fn runs_the_operator_exactly_when_clap_parses_run() {
        for line in [
            "gamedeploy run",
            "gamedeploy run --kubeconfig k --namespace run",
            "kubectl-gamedeploy run --no-leader-election",
            "gamedeploy status run",
            "gamedeploy crds",
            "gamedeploy",
            "gamedeploy --help",
        ] {
            let args: Vec<&str> = line.split(' ').collect();
            let clap_says = matches!(
                crate::Cli::try_parse_from(&args).map(|c| c.command),
                Ok(crate::Command::Run(_))
            );
            let ours = runs_operator(args.iter().map(|a| a.as_bytes()));
            assert_eq!(ours, clap_says, "{line}");
        }
    }
}
