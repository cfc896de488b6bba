//! The on-disk schema version, end to end with the `r53` binary: a data dir stamped with a
//! version this build does not know makes `r53 serve` exit non-zero with a message naming both
//! versions and the directory, and leaves every file of the dir byte for byte as it was; the
//! same dir stamped back with this build's version serves its zones again.
//!
//! The crash-safety half of issue 7 item 1 (SIGKILL under load, nothing acknowledged lost,
//! nothing half-applied) is `tests/crash/run.py`, which drives a built binary for many kills.
//!
//! The version lives in the file `r53-schema-version` (decimal), read before sled opens the dir
//! (sled's open rewrites its files), and under the key `schema_version` (a big-endian u32) of
//! sled's default tree; the test writes both, the key with the `sled` crate directly, as an
//! older or newer r53 would have.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use r53::store::SCHEMA_VERSION;

use crate::support::{exchange_udp, free_port, query, query_udp};

const BIN: &str = env!("CARGO_BIN_EXE_r53");
const SCHEMA_KEY: &[u8] = b"schema_version";
const SCHEMA_FILE: &str = "r53-schema-version";

const ZONES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/zones");

fn serve(data: &Path, dns: SocketAddr, zones: &str) -> std::process::Child {
    Command::new(BIN)
        .args(["serve", "--dns-addr", &dns.to_string()])
        .args(["--api-addr", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(data)
        .args(["--zones-dir", zones])
        .arg("--no-recursion")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("r53 starts")
}

/// Polls DNS until r53 answers for www.example.com (imported from zones/ or kept in the dir).
async fn wait_for_answer(dns: SocketAddr, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("r53 exited early: {status}");
        }
        let probe = query("www.example.com.", RecordType::A).to_vec().unwrap();
        if exchange_udp(dns, &probe).await.is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "r53 did not answer within 30 s");
    }
}

fn terminate(child: std::process::Child) {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "r53 exit {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

/// Stamps the data dir with `version`, as an r53 of that schema would have: in sled's key and
/// in the plain file r53 reads before it lets sled open (and so rewrite) the dir.
fn stamp(data: &Path, version: u32) {
    {
        let db = sled::open(data).unwrap();
        db.insert(SCHEMA_KEY, &version.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    std::fs::write(data.join(SCHEMA_FILE), format!("{version}\n")).unwrap();
}

/// Runs `r53 serve` on a dir it must refuse; returns its stderr.
fn refused(data: &Path) -> String {
    let dns: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut child = serve(data, dns, ZONES);
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("r53 serve kept running on a data dir of an unknown schema version");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "r53 serve exited {} on a data dir of an unknown schema version:\n{stderr}",
        out.status
    );
    stderr
}

#[tokio::test]
async fn unknown_schema_version_is_refused_with_the_dir_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // A real data dir: r53 imports zones/ into it and stops cleanly.
    let dns: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut child = serve(&data, dns, ZONES);
    wait_for_answer(dns, &mut child).await;
    terminate(child);

    for version in [SCHEMA_VERSION + 1, 0, u32::MAX] {
        stamp(&data, version);
        let before = snapshot(&data);
        assert!(!before.is_empty());
        let stderr = refused(&data);
        for needle in [
            format!("schema version {version}"),
            format!("reads version {SCHEMA_VERSION} only"),
            "will not rewrite it".to_string(),
            data.display().to_string(),
        ] {
            assert!(
                stderr.contains(&needle),
                "the refusal names {needle:?}; stderr:\n{stderr}"
            );
        }
        let after = snapshot(&data);
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            "the refused data dir has the same files"
        );
        for (path, bytes) in &before {
            assert!(
                after[path] == *bytes,
                "{} changed when r53 refused schema version {version}",
                path.display()
            );
        }
    }

    // Stamped back with this build's version, the same dir serves what it held (no zone
    // files this time: the answer comes from the dir).
    stamp(&data, SCHEMA_VERSION);
    let dns: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut child = serve(&data, dns, "/nonexistent");
    wait_for_answer(dns, &mut child).await;
    let answer = query_udp(dns, &query("www.example.com.", RecordType::A)).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(!answer.answers.is_empty());
    terminate(child);
}
