//! The `r53 serve` binary as users run it: zone files imported at start, SIGTERM shuts it down
//! cleanly with the data kept, and a privileged port it may not bind is explained in one line.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::{free_port, query, query_udp};

const BIN: &str = env!("CARGO_BIN_EXE_r53");

/// Waits until the server at `addr` answers a query (it has bound and loaded its zones).
async fn wait_for_answer(addr: SocketAddr, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("r53 exited early: {status}");
        }
        let probe = query("www.example.com.", RecordType::A).to_vec().unwrap();
        if crate::support::exchange_udp(addr, &probe).await.is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "r53 did not answer within 20 s");
    }
}

fn serve(dir: &std::path::Path, dns: SocketAddr, api: u16) -> std::process::Child {
    Command::new(BIN)
        .args(["serve", "--dns-addr", &dns.to_string()])
        .args(["--api-addr", &format!("127.0.0.1:{api}")])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--zones-dir", concat!(env!("CARGO_MANIFEST_DIR"), "/zones")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("r53 starts")
}

fn terminate(child: std::process::Child) -> (std::process::ExitStatus, String) {
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let dns: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut child = serve(dir.path(), dns, free_port());
    wait_for_answer(dns, &mut child).await;
    let answer = query_udp(dns, &query("www.example.com.", RecordType::A)).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answer.answers.len(), 2);
    let (status, log) = terminate(child);
    assert!(status.success(), "exit {status}; log:\n{log}");
    assert!(
        log.contains(&format!("dns.udp={dns}")),
        "bound address logged:\n{log}"
    );
    assert!(log.contains("created hosted zone"), "{log}");
    assert!(log.contains("shut down"), "{log}");

    // Started again on the same data: the zone comes from sled, not from the file again.
    let dns: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut child = serve(dir.path(), dns, free_port());
    wait_for_answer(dns, &mut child).await;
    let answer = query_udp(dns, &query("www.example.com.", RecordType::A)).await;
    assert_eq!(answer.answers.len(), 2);
    let (status, log) = terminate(child);
    assert!(status.success(), "{log}");
    assert!(
        !log.contains("created hosted zone"),
        "imported twice:\n{log}"
    );
}

#[test]
fn unprivileged_port_53_is_explained_in_one_line() {
    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    assert!(
        start > 53,
        "this machine lets anyone bind port 53 (ip_unprivileged_port_start={start}); the check needs a privileged port"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let is_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let mut command = if is_root {
        // Drop to nobody so that binding port 53 is refused as it is for a normal user.
        let mut perms = Command::new("chmod");
        perms.arg("-R").arg("a+rwx").arg(dir.path());
        assert!(perms.status().unwrap().success());
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    let output = command
        .args([
            "serve",
            "--dns-addr",
            "127.0.0.1:53",
            "--api-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .args(["--zones-dir", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("permission denied"))
        .unwrap_or_else(|| panic!("no permission line in:\n{stderr}"));
    for hint in ["root", "CAP_NET_BIND_SERVICE", "--dns-addr 127.0.0.1:5300"] {
        assert!(line.contains(hint), "{hint} missing from: {line}");
    }
}
