//! `gamedeploy run` as a process, against clusters it cannot use: it must say so, at a bounded
//! rate and without `Debug` dumps, and still stop on SIGTERM (issue 12, item 6).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const UNREACHABLE: &str = "cannot reach the cluster";

/// A kubeconfig naming `server`, in a scratch directory of its own.
fn kubeconfig(tag: &str, server: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gamedeploy-run-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\"}}\n\
             contexts:\n- name: c\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user: {{}}\n\
             current-context: c\n"
        ),
    )
    .unwrap();
    path
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback HTTP server answering 404 to every request, as a proxy or a wrong URL would.
fn not_found_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "404 page not found";
                let _ = write!(
                    conn,
                    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

/// The operator's stderr, line by line, as it comes.
fn start(kubeconfig: &PathBuf) -> (Child, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
        .args(["run", "--kubeconfig"])
        .arg(kubeconfig)
        // Tests run at once, and the default port may be anyone's.
        .args(["--metrics-addr", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gamedeploy run");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// Waits (bounded) for the child to exit; kills it if it does not, so a failing test leaves
/// no process behind.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Runs the operator against `server`, sends SIGTERM once it has said it cannot reach the
/// cluster and a few seconds of retries have passed; returns its whole stderr.
fn unreachable_then_sigterm(tag: &str, server: &str) -> String {
    let (mut child, lines) = start(&kubeconfig(tag, server));
    let mut seen = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while !seen.iter().any(|l: &String| l.contains(UNREACHABLE)) {
        let left = until.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no {UNREACHABLE:?} within 10s; stderr so far:\n{}",
                    seen.join("\n")
                );
            }
        }
    }
    // Time for a few retries, to see that they are paced.
    std::thread::sleep(Duration::from_secs(3));
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_exit(&mut child, Duration::from_secs(10));
    seen.extend(lines.iter());
    let stderr = seen.join("\n");
    let status = status.unwrap_or_else(|| panic!("did not stop on SIGTERM; stderr:\n{stderr}"));
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    for dump in ["Error {", "Status {", "kind:", "Some(", "ListMeta"] {
        assert!(
            !stderr.contains(dump),
            "Debug output ({dump:?}) on stderr:\n{stderr}"
        );
    }
    let attempts = stderr.lines().filter(|l| l.contains(UNREACHABLE)).count();
    // With back-off, about three attempts fit in those seconds; a busy loop makes hundreds.
    assert!(
        (1..=6).contains(&attempts),
        "{attempts} retry lines:\n{stderr}"
    );
    assert!(
        stderr.lines().count() <= attempts + 4,
        "more than one line per attempt:\n{stderr}"
    );
    stderr
}

#[test]
fn run_against_a_closed_port_says_so_and_stops_on_sigterm() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let stderr = unreachable_then_sigterm("closed", &url);
    let line = stderr.lines().find(|l| l.contains(UNREACHABLE)).unwrap();
    assert!(line.contains(&url), "{line}");
    assert!(line.contains("refused"), "{line}");
}

#[test]
fn run_against_a_server_answering_404_says_so_and_stops_on_sigterm() {
    let url = format!("http://127.0.0.1:{}", not_found_server());
    let stderr = unreachable_then_sigterm("notfound", &url);
    let line = stderr.lines().find(|l| l.contains(UNREACHABLE)).unwrap();
    assert!(line.contains(&url), "{line}");
    assert!(line.contains("404"), "{line}");
    assert!(
        line.contains("gamedeploy crds"),
        "says how to install the CRDs: {line}"
    );
}

/// mimalloc's options as the process started with them: its verbose start-up listing
/// (`MIMALLOC_VERBOSE=1`), `option 'name': value` lines on stderr. A process that keeps
/// running (`run`) is stopped once the listing is over.
#[cfg(feature = "mimalloc")]
fn mimalloc_options(
    args: &[&str],
    env: &[(&str, &str)],
) -> std::collections::BTreeMap<String, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gamedeploy"))
        .args(args)
        .env("MIMALLOC_VERBOSE", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gamedeploy");
    let stderr = child.stderr.take().unwrap();
    let mut options = std::collections::BTreeMap::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if let Some((name, value)) = line
            .strip_prefix("option '")
            .and_then(|rest| rest.split_once("': "))
        {
            options.insert(name.to_string(), value.trim().to_string());
        } else if !options.is_empty() {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    options
}

/// `gamedeploy run` starts mimalloc set for memory (src/allocator.rs): freed pages go back at
/// once and arenas are committed as used, from the first arena on, with nothing set in the
/// environment. Other subcommands keep mimalloc's defaults, and a `MIMALLOC_*` variable
/// still wins.
#[cfg(feature = "mimalloc")]
#[test]
fn run_starts_mimalloc_set_for_memory_and_nothing_else_does() {
    let kubeconfig = kubeconfig("mimalloc", &format!("http://127.0.0.1:{}", closed_port()));
    let kubeconfig = kubeconfig.to_str().unwrap();
    let run = [
        "run",
        "--kubeconfig",
        kubeconfig,
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    let pick = |o: &std::collections::BTreeMap<String, String>| {
        (o["arena_eager_commit"].clone(), o["purge_delay"].clone())
    };
    assert_eq!(pick(&mimalloc_options(&run, &[])), ("0".into(), "0".into()));
    assert_eq!(
        pick(&mimalloc_options(&["states"], &[])),
        ("2".into(), "1000".into())
    );
    assert_eq!(
        pick(&mimalloc_options(&run, &[("MIMALLOC_PURGE_DELAY", "250")])),
        ("0".into(), "250".into())
    );
}
